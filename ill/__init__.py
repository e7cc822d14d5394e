"""Interlibrary loan: the request ledger, its state model, and the service layer.

No Flask here: ``ill.service.IllService`` is the API the web front end, the command line
and the tests call. ``ill.db`` opens the database (SQLite or PostgreSQL) and migrates it;
``ill/states.yaml`` is the state model.
"""
