"""tsd-s3cmd: s3cmd for TSD projects, with TSD's authentication done for you."""

__version__ = "0.1.0"
