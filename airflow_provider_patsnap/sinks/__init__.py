"""Where rows go: back to XCom (:mod:`.base`), into files (:mod:`.files`) or a SQL table (:mod:`.sql`).

Each sink also keeps the rejects (vendor data that could not become a row) where users can find them: a
``<table>_rejects`` table, a ``<name>.rejects.jsonl`` file, or the task log for XCom. :mod:`.base` holds
the contract every sink keeps.
"""
