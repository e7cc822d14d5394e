"""The bundled demo consortium: its members' plan, its config, and their catalogues.

Everything here is made up but shaped like the real thing, from a fixed seed with the
standard library's ``random``, so the same seed gives the same bytes:

* about 1,500 works: Chinese books (CLC classes and call numbers like ``TP312/45``, real
  publishers with their ISBN registrant codes, ISBN-13 ``978-7-…`` with valid check
  digits, none before 1987, editions), Western books (LCC, English publishers) and serials
  (ISSNs with valid check digits, the members' own 学报);
* each work held by 1 to 8 members, favouring the members whose subjects it fits, so the
  same book comes back from several libraries and de-duplication shows;
* one catalogue of 50-150 records per member, each record catalogued the member's way:
  MARC21 with 852 holdings, or CNMARC (200/210/215/606/690/701, pinyin ``$A`` at some
  members, 905/906 holdings), with the member's own call numbers, locations and barcodes,
  written as ISO 2709 in UTF-8 or (a few CNMARC members) GB18030.

The modules, in the order the data flows:

- ``members``: how each member is served (SRU or Z39.50, MARC21 or UNIMARC, the slow one, the
  one that is down), and ``render_config``, which writes that as a libraries file
  (``config/demo.yaml``, ports ``PORT_BASE`` + the member's position; ``python -m
  broker.demo`` rewrites it);
- ``vocabulary`` (data), ``works`` (the works, with their ISBNs and ISSNs), ``holders``
  (who holds what), ``records`` (one member's catalogue as MARC, written with
  ``marc.writer``);
- ``catalogues``: all of it from one seed, and ``ensure``, which writes the catalogues
  into a cache directory once;
- ``servers``: ``DemoConsortium``, which serves them.
"""
