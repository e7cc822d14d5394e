"""MARC in, one normalized record out.

Read with ``read_file``/``read_bytes`` (ISO 2709, MARCXML, MARC-in-JSON; UTF-8, MARC-8,
GB18030), then ``normalize`` each entry's pymarc record into a ``Record``.
"""

from marc.model import Classification, Holding, Record, Romanized
from marc.normalization import normalize
from marc.reader import Entry, read_bytes, read_file

__all__ = [
    "Classification", "Entry", "Holding", "Record", "Romanized",
    "normalize", "read_bytes", "read_file",
]
