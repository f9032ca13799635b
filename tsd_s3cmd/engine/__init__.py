"""The transfer engine: many files and parts at once under one request budget.

It knows nothing of s3cmd or of TSD: the bridge hands it the calls to make
(each a function that sends one request the way s3cmd would), and it decides
when each runs, how fast, and what a stopped transfer leaves to resume.
"""
