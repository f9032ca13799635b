"""The login: registration, tokens from TSD's auth API, and what is kept of them on disk.

Everything a run needs to put ``token`` and ``x-project-select`` on its
requests lives here, and nothing that moves data: the broker hands a token
to whoever asks, logging in or refreshing when it must, under one lock for
every process that shares the HOME.
"""
