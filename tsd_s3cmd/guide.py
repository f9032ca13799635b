"""The text of ``tsd-s3cmd --guide`` (also ``-h``/``--help``)."""

USAGE = "Usage: tsd-s3cmd [TSD OPTIONS] [S3CMD OPTIONS] COMMAND [ARGS]"

GUIDE = f"""\
{USAGE}

tsd-s3cmd is s3cmd for TSD projects. It keeps each project's S3 keys, and
takes care of TSD's login: it registers once per project, logs in when a
command needs a fresh token, keeps tokens cached and refreshed, picks the
right kind of token for each command (import to write, export to read), and
adds TSD's headers to every request s3cmd sends. Everything that is not a
TSD option below goes to s3cmd unchanged; see 'tsd-s3cmd --s3cmd-help' for
s3cmd's own commands and options.

TSD options (they may stand anywhere on the command line; after '--'
everything belongs to s3cmd):
  --env NAME             prod (default), alt, test, ec-prod or ec-test
  --usetest, --usealt    short for --env test, --env alt
  --project PNUM         the project to act for (needed only when you have
                         registered more than one for the environment)
  --setup                store a project's S3 keys and register it
  --forget               remove a project's S3 keys, API key and tokens
                         (with --project)
  --register             get and store the API key for a project only
  --basic                get import tokens with the API key alone, no
                         one-time code (TSD allows it only from registered
                         addresses); for batch jobs
  --parallel N           requests at once for the whole command: files and
                         parts of large files (default: 10, growing to 64
                         while the link rewards it; N fixes the number, 1
                         sends one at a time, as s3cmd does)
  --print-token-for CMD [ARGS]
                         print the token 'CMD ARGS' needs, the one a run
                         of it would use (log in if necessary); refused
                         as a run would be (see 6)
  --login [CMD ARGS]     log in now for the token 'CMD ARGS' needs (an
                         import token without them), so that batch jobs
                         and job arrays run without anyone to ask (see 10)
  --shard K/N            move only share K (0 to N-1) of a tree's files;
                         --shard slurm takes K and N from a Slurm job
                         array's task (see 10)
  --status               per project: registration, s3cmd config, cached
                         tokens; and unfinished uploads and downloads
  --logout               forget cached tokens (all, or of --env/--project)
  --completion SHELL     print a completion script for bash, zsh or fish
  --guide, -h, --help    this text
  --s3cmd-help           s3cmd's own help
  --version              versions of tsd-s3cmd, s3cmd, Python and the OS

Getting started
---------------

1. Set up your project, once:

       tsd-s3cmd --setup --project p11

   It asks for the project's S3 access key and secret key (inside TSD they
   are in /tsd/pNN/data/durable/s3-api-access-keys; the secret is not shown
   as you type), then registers tsd-s3cmd with the project: your TSD user
   name (pNN-name), password and one-time code. The keys go into an s3cmd
   config of their own, ~/.config/tsd-s3cmd/prod.p11.s3cfg (mode 600); the
   registration gives an API key, stored beside it, which only identifies
   this client to TSD and on its own opens nothing. Running --setup again
   replaces the keys. Add --env test (or another environment) for another
   environment. Without a terminal, give the answers as lines on stdin:
   access key, secret key, then user name, password and one-time code.

2. More projects: run --setup for each. Then --project picks everything
   at once, the S3 keys, the API key and the tokens:

       tsd-s3cmd --project p22 ls

   With one project registered, --project is not needed at all. To remove
   a project: tsd-s3cmd --forget --project p22.

   Which s3cmd config a command uses: the one given with -c FILE (or in
   S3CMD_CONFIG), else the project's stored one, else ~/.s3cfg.
   tsd-s3cmd never writes ~/.s3cfg; if yours serves another S3 service it
   stays as it is. 'tsd-s3cmd --status' shows which config each project uses.

   The other way, as with plain s3cmd: write ~/.s3cfg yourself and register
   with 'tsd-s3cmd --register'. For production the file reads:

       host_base = api.tsd.usit.no
       host_bucket = api.tsd.usit.no
       bucket_location = us-east-1
       use_https = True
       access_key = YOUR_ACCESS_KEY
       secret_key = YOUR_SECRET_KEY
       signature_v2 = False

   (bucket_location is not used by TSD, but s3cmd needs it.) For the test
   API, use test.api.tsd.usit.no as host_base and host_bucket.

3. Make a bucket, and upload:

       tsd-s3cmd mb s3://mybucket
       tsd-s3cmd put results.tsv s3://mybucket
       tsd-s3cmd --multipart-chunk-size-mb=200 put big.tar s3://mybucket

   The first command that needs a token asks for your password and one-time
   code; the token is cached and refreshed, so the next commands just run.

   A large file goes up in parts. If the upload breaks off, tsd-s3cmd says
   which command resumes it, for example

       tsd-s3cmd --upload-id ID --multipart-chunk-size-mb=200 put big.tar s3://mybucket

   and the parts already stored are not sent again. 'tsd-s3cmd --status'
   lists uploads that never finished, with their resume commands.

4. Keep a directory in step with TSD (only what changed is sent):

       tsd-s3cmd --multipart-chunk-size-mb=200 sync mydir s3://mybucket

   If it breaks off, run it again: what is there already is not sent again,
   and tsd-s3cmd prints the command that finishes a large file that was
   halfway (an upload of its own, with --upload-id). sync first lists what
   is in the bucket, which takes export rights (see 6); without them,
   'put --recursive mydir s3://mybucket' stores the same files, sending all
   of them each time.

5. Download. Data leaves TSD only through the bucket export-bucket, which is
   the folder /tsd/pNN/data/durable/s3-api/export-bucket inside TSD; only
   members of pNN-export-group can read it. Outside TSD:

       tsd-s3cmd ls s3://export-bucket
       tsd-s3cmd get s3://export-bucket/myfile
       tsd-s3cmd sync s3://export-bucket/ mydir/

   Reading needs an export token, so the first of these logs in once more.
   Downloads from any other bucket are refused by TSD; tsd-s3cmd says so
   at once, before asking for a password.

6. Who may do what. Every member of the project may upload. Listing,
   seeing what is in a bucket, counts as exporting at TSD, so only members
   of pNN-export-group may list, whichever token the command carries: ls,
   la, du, info, sync (in any direction), and get, del, cp, mv, setacl
   with --recursive or a wildcard in an s3:// path. Downloading is for the
   same members, from export-bucket only. put never lists, and anyone may
   resume an upload with --upload-id. If you are not in the group, a
   command that would list stops before it sends anything and says so;
   ask your project's administrator for export rights, then run
   'tsd-s3cmd --logout' so that your next login brings them.

7. The test API: add --usetest (or --env test) to any command, including
   --setup and --register.

8. Many files and large files. s3cmd sends one request at a time;
   tsd-s3cmd keeps up to 10 on their way for the whole command: several
   files at once, and the parts of a file larger than the part size
   (s3cmd's --multipart-chunk-size-mb, 15 MB unless you say otherwise).
   Over a long or busy link that is many times faster. What is sent, and
   the line printed for each file, are s3cmd's own; the lines come as the
   files finish, and at a terminal one line below them counts the whole
   command. While every place is taken and the answers come back (many
   small files over a long link), the number grows, up to 64; when the
   gateway says slow down (503 SlowDown, 429) it halves, the request goes
   again after a short pause, uncounted as a failure, and one line at the
   end says how often that happened. --parallel N (or TSD_S3CMD_PARALLEL=N
   in a batch job) fixes the number; --parallel 1 is s3cmd's one-at-a-time.
   --limit-rate caps
   the whole command, and the earliest part gets the bytes first, so parts
   finish one after the other.

   Stopping costs little. Ctrl-C, SIGTERM (a batch job's time limit) and
   SIGHUP stop at once, print what resumes an unfinished upload, and exit
   with 130, 143 and 129. A download goes into a hidden file beside the
   destination (.NAME.tsd-s3cmd.part), which takes the destination's name
   only when it is whole and its MD5 checked; stopped in any way, even
   killed, it is continued by the same command run again, which fetches
   only what was missing. 'tsd-s3cmd --status' lists both kinds.

9. Long transfers and batch jobs. Tokens are refreshed while a transfer
   runs, and many tsd-s3cmd processes started at once (a Slurm array) share
   one login. To hand a token to another tool:

       T=$(tsd-s3cmd --print-token-for put)

   The token alone goes to stdout; stderr explains how to use it:
   TSD_S3CMD_TOKEN="$T" tsd-s3cmd ... uses it with no login at all.

   A sync run again reads only the local files that changed: the MD5s of
   the others are kept (s3cmd's --cache-file, in ~/.cache/tsd-s3cmd),
   trusted while a file's size, mtime and inode stay the same.
   TSD_S3CMD_MD5_CACHE=0 turns that off.

   Trees of any size. sync, and put, get, cp, mv and del with --recursive,
   work through a tree's names in order, about a thousand files at a time,
   so that memory stays the same for a million files as for a thousand
   (plain s3cmd holds both sides' lists whole). What is sent, skipped and
   deleted is decided as s3cmd decides it; only the '[3 of 1000]' at the
   end of a file's line counts within each thousand.

10. One sync over the nodes of a Slurm job array. Each task moves its own
    share of the files (chosen by their path, the same on every machine),
    and all tasks use the login you make at the terminal first:

        tsd-s3cmd --login sync /cluster/data/run42/ s3://mybucket/run42/
        sbatch sync-run42.sh

    where sync-run42.sh is

        #!/bin/bash
        #SBATCH --array=0-3 --time=04:00:00 --mem=2G
        #SBATCH --output=sync-run42-%a.out
        tsd-s3cmd --shard slurm sync /cluster/data/run42/ s3://mybucket/run42/

    The tasks share your home directory's tokens, and when they near
    expiry one task renews them for all. A task that finds no usable token
    does not wait for a password: it fails at once and prints the --login
    command to run. Each task ends with one line, for example

        tsd-s3cmd: share 1/4: 1012 files, 1012 moved, 0 skipped, 0 failed

    so the job's output files show whether every share finished. To run
    again only shares 1 and 3, name them: tsd-s3cmd --shard 1/4 sync ...
    at the terminal, or as an array whose task numbers are the shares

        sbatch --array=1,3 --output=sync-run42-%a.out \
          --wrap='tsd-s3cmd --shard $SLURM_ARRAY_TASK_ID/4 sync /cluster/data/run42/ s3://mybucket/run42/'

    (--shard slurm counts an array's tasks, and refuses one like 1,3 whose
    tasks are not evenly spaced.) With --delete-removed each share deletes
    only what is its own. 'tsd-s3cmd --status' lists unfinished uploads and
    downloads with their share.

11. All of s3cmd's commands that talk to S3 work (cp, mv, del, rb, info,
    du, la, multipart, listmp, abortmp, 'put -' from stdin, ...). Two kinds
    cannot work with TSD and are refused with the reason: signurl (a
    presigned URL cannot carry TSD's token header) and the CloudFront
    commands (cf...: CloudFront is Amazon's, not TSD's).

12. Tab completion of options, commands, environments, your projects and
    file names, for bash (zsh and fish alike):

        tsd-s3cmd --completion bash > ~/.local/share/bash-completion/completions/tsd-s3cmd

    It runs offline and never asks for anything; make it again after
    upgrading s3cmd, whose commands and options it holds.

13. s3cmd's own commands and options:

        tsd-s3cmd --s3cmd-help

    or https://s3tools.org/s3cmd.

Credentials are read from the terminal; without one (scripts), as lines on
stdin: user name, password, one-time code (after the two S3 keys for
--setup). They never appear on a command line, and neither tokens nor keys
appear in output.
"""
