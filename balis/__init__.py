"""The ``balis`` command: the one place that wires the broker, ILL and the web together."""
