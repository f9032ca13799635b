"""The bridge into s3cmd: s3cmd's own code, run in this process with tsd-s3cmd's hooks.

``shim`` is the one place that touches s3cmd's internals, checked before every
run; the rest say what a run of s3cmd is (runner), how its transfer loops are
rewritten (script, plans, transfers), and what it leaves behind (resume
commands, the MD5 cache).
"""
