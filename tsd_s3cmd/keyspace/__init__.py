"""The key space of a command: listings in S3 key order, cut into batches and shares.

A command over a tree (``sync``, recursive ``put``/``get``/``cp``/``mv``/``del``)
works through its keys a range at a time, so that what it holds in memory
depends on the range, not on the tree: both sides are listed in S3 key order
(``walk`` for a local tree, S3's own order for a bucket), and ``order`` cuts
the merged listings into ranges that hold about the same number of entries.
``shards`` says which keys are a job array task's share. Nothing here knows
s3cmd or TSD: the bridge says how s3cmd names a key.
"""
