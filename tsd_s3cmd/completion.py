"""``tsd-s3cmd --completion bash|zsh|fish``: a shell completion script.

The script is generated, not written by hand, so that it offers what this
installation has: the TSD options of tsd_options.py, the environments, and s3cmd's
commands and options as the installed s3cmd defines them (read through
shim.vocabulary, not copied). Generate it again after upgrading s3cmd.

Only the registered projects change after the script is made; for those the
script runs ``tsd-s3cmd --completion projects [--env E]``, which reads the
config directory and nothing else: no network, no prompt, stdin not read.
Nothing of this is loaded on the everyday path.
"""

from __future__ import annotations

from contextlib import suppress

from .context import Environment
from .environments import ENVIRONMENTS
from .errors import TsdError, UsageError
from .tsd_options import TSD_OPTIONS

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from .environments import ApiEnvironment

SHELLS = ("bash", "zsh", "fish")
PROJECTS = "projects"  # the script's own question, not for people
# TSD options whose value has its own completion; any other option value is a path.
_SPECIAL_VALUES = ("--env", "--project", "--print-token-for", "--completion")


# One word before the cursor, in bash and zsh alike: the environment it
# chooses, or the s3cmd command (the first word that is no option).
_SCAN_WORD = """\
        case $word in
            --env=*) env=${word#--env=} ;;
            --usetest) env=test ;;
            --usealt) env=alt ;;
            --) command=--; break ;;
            -*) ;;
            *) [[ -z $command ]] && command=$word ;;
        esac
        (( i++ ))
    done
"""


class Words:
    """Everything a completion script offers, gathered when it is generated."""

    def __init__(self, tsd_options: dict[str, bool], s3cmd_commands: list[str],
                 s3cmd_options: list[tuple[str, bool]]) -> None:  # fmt: skip
        self.tsd_options = list(tsd_options)
        ours = set(tsd_options)
        theirs = [(name, value) for name, value in s3cmd_options if name not in ours]
        self.s3cmd_options = [name for name, _ in theirs]
        # Options whose next word is their value: TSD's and s3cmd's.
        self.with_value = [n for n, v in tsd_options.items() if v] + [n for n, v in theirs if v]
        self.path_values = [n for n in self.with_value if n not in _SPECIAL_VALUES]
        self.commands = s3cmd_commands
        self.environments = list(ENVIRONMENTS)


def completion_for(context: Environment, shell: str, env: ApiEnvironment) -> int:
    if shell == PROJECTS:
        return _projects(context, env)
    if shell not in SHELLS:
        raise UsageError(f"--completion takes bash, zsh or fish, not {shell!r}")
    from .bridge import shim

    commands, options = shim.vocabulary(context.cache_home / "tsd-s3cmd")
    words = Words(TSD_OPTIONS, commands, options)
    header = (
        ("#compdef tsd-s3cmd\n" if shell == "zsh" else "")  # zsh's autoload needs it first
        + f"# {shell} completion for tsd-s3cmd, made by 'tsd-s3cmd --completion {shell}' "
        f"for s3cmd {shim.version()}.\n"
        "# Make it again after upgrading s3cmd. See the README for where to put it.\n"
    )
    context.stdout.write(header + {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell](words))
    return 0


def _projects(context: Environment, env: ApiEnvironment) -> int:
    """The projects of ``env`` with an API key or a stored config; silent on any trouble."""
    from .login.s3configs import S3Configs
    from .login.store import Store

    found: set[str] = {p for e, p in S3Configs(context.config_dir).stored() if e == env.name}
    store = Store(context.config_dir, context.tacl_config, lambda _: None)
    # A completion says nothing; the next real command explains the damage.
    with suppress(TsdError):
        found.update(store.projects(env.name))
    context.stdout.write("".join(f"{p}\n" for p in sorted(found)))
    return 0


def _words(names: list[str]) -> str:
    return " ".join(names)


def _bash(w: Words) -> str:
    return f"""
_tsd_s3cmd_files() {{
    local IFS=$'\\n'
    COMPREPLY=($(compgen -f -- "$1"))
    compopt -o filenames 2>/dev/null
}}

_tsd_s3cmd() {{
    local tsd_options='{_words(w.tsd_options)}'
    local s3cmd_options='{_words(w.s3cmd_options)}'
    local with_value=' {_words(w.with_value)} '
    local path_values=' {_words(w.path_values)} '
    local commands='{_words(w.commands)}'
    local environments='{_words(w.environments)}'
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev= word value env= command= i=1 step
    (( COMP_CWORD > 0 )) && prev=${{COMP_WORDS[COMP_CWORD-1]}}
    # bash splits --env=test at the '=' (COMP_WORDBREAKS): see through it.
    if [[ $cur == = ]]; then
        cur=
    elif [[ $prev == = ]] && (( COMP_CWORD > 1 )); then
        prev=${{COMP_WORDS[COMP_CWORD-2]}}
    fi
    while (( i < COMP_CWORD )); do
        word=${{COMP_WORDS[i]}}
        if [[ $with_value == *" $word "* ]]; then
            step=2 value=${{COMP_WORDS[i+1]}}
            [[ $value == = ]] && step=3 value=${{COMP_WORDS[i+2]}}
            [[ $word == --env ]] && env=$value
            (( i += step ))
            continue
        fi
{_SCAN_WORD}    case $prev in
        --env)
            COMPREPLY=($(compgen -W "$environments" -- "$cur")); return ;;
        --project)
            local projects
            projects=$(command tsd-s3cmd --completion projects ${{env:+--env "$env"}} \
                </dev/null 2>/dev/null)
            COMPREPLY=($(compgen -W "$projects" -- "$cur"))
            return ;;
        --print-token-for)
            COMPREPLY=($(compgen -W "$commands" -- "$cur")); return ;;
        --completion)
            COMPREPLY=($(compgen -W "{_words(list(SHELLS))}" -- "$cur")); return ;;
    esac
    if [[ $path_values == *" $prev "* ]]; then
        _tsd_s3cmd_files "$cur"
    elif [[ $cur == --env=* ]]; then
        COMPREPLY=($(compgen -P --env= -W "$environments" -- "${{cur#--env=}}"))
    elif [[ $cur == -* && $command != -- ]]; then
        COMPREPLY=($(compgen -W "$tsd_options $s3cmd_options" -- "$cur"))
    elif [[ -z $command ]]; then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    else
        _tsd_s3cmd_files "$cur"
    fi
}}

complete -F _tsd_s3cmd tsd-s3cmd
"""


def _zsh(w: Words) -> str:
    return f"""
_tsd_s3cmd() {{
    local -a tsd_options=({_words(w.tsd_options)})
    local -a s3cmd_options=({_words(w.s3cmd_options)})
    local -a with_value=({_words(w.with_value)})
    local -a path_values=({_words(w.path_values)})
    local -a commands=({_words(w.commands)})
    local -a environments=({_words(w.environments)})
    local cur=${{words[CURRENT]}} prev=${{words[CURRENT-1]}} word env= command= i=2
    while (( i < CURRENT )); do
        word=${{words[i]}}
        if (( ${{with_value[(Ie)$word]}} )); then
            [[ $word == --env ]] && env=${{words[i+1]}}
            (( i += 2 ))
            continue
        fi
{_SCAN_WORD}    case $prev in
        --env) compadd -a environments; return ;;
        --project)
            local projects
            projects=$(command tsd-s3cmd --completion projects ${{env:+--env=$env}} \
                </dev/null 2>/dev/null)
            compadd -- ${{(f)projects}}
            return ;;
        --print-token-for) compadd -a commands; return ;;
        --completion) compadd {_words(list(SHELLS))}; return ;;
    esac
    if [[ $cur == --env=* ]]; then
        compadd -P --env= -a environments
    elif (( ${{path_values[(Ie)$prev]}} )); then
        _files
    elif [[ $cur == -* && $command != -- ]]; then
        compadd -a tsd_options s3cmd_options
    elif [[ -z $command ]]; then
        compadd -a commands
    else
        _files
    fi
}}

compdef _tsd_s3cmd tsd-s3cmd
# Autoloaded from $fpath, this file runs for the first completion asked for;
# the compdef above sends the later ones straight to the function.
if [[ ${{zsh_eval_context[-1]}} == loadautofunc ]]; then
    _tsd_s3cmd "$@"
fi
"""


def _fish(w: Words) -> str:
    lines = [
        "",
        "function __tsd_s3cmd_state --description 'the environment and the s3cmd command typed'",
        "    set -l tokens (commandline -opc)",
        f"    set -l with_value {_words(w.with_value)}",
        "    set -l env",
        "    set -l command",
        "    set -l skip",
        "    for token in $tokens[2..-1]",
        "        if test -n \"$skip\"",
        "            test \"$skip\" = --env; and set env $token",
        "            set skip",
        "            continue",
        "        end",
        "        if contains -- $token $with_value",
        "            set skip $token",
        "            continue",
        "        end",
        "        switch $token",
        "            case '--env=*'",
        "                set env (string replace -- --env= '' $token)",
        "            case --usetest",
        "                set env test",
        "            case --usealt",
        "                set env alt",
        "            case --",
        "                set command --",
        "                break",
        "            case '-*'",
        "            case '*'",
        "                test -z \"$command\"; and set command $token",
        "        end",
        "    end",
        "    echo \"$env\"",
        "    echo \"$command\"",
        "end",
        "",
        "function __tsd_s3cmd_needs_command",
        "    set -l state (__tsd_s3cmd_state)",
        "    test -z \"$state[2]\"",
        "end",
        "",
        "function __tsd_s3cmd_projects",
        "    set -l state (__tsd_s3cmd_state)",
        "    if test -n \"$state[1]\"",
        "        command tsd-s3cmd --completion projects --env $state[1] </dev/null 2>/dev/null",
        "    else",
        "        command tsd-s3cmd --completion projects </dev/null 2>/dev/null",
        "    end",
        "end",
        "",
        f"complete -c tsd-s3cmd -n __tsd_s3cmd_needs_command -f -a '{_words(w.commands)}'",
        f"complete -c tsd-s3cmd -l env -x -a '{_words(w.environments)}'",
        "complete -c tsd-s3cmd -l project -x -a '(__tsd_s3cmd_projects)'",
        f"complete -c tsd-s3cmd -l print-token-for -x -a '{_words(w.commands)}'",
        f"complete -c tsd-s3cmd -l completion -x -a '{_words(list(SHELLS))}'",
    ]
    special = set(_SPECIAL_VALUES)
    for name in (*w.tsd_options, *w.s3cmd_options):
        if name in special:
            continue
        flag = f"-l {name[2:]}" if name.startswith("--") else f"-s {name[1:]}"
        lines.append(f"complete -c tsd-s3cmd {flag}{' -r' if name in w.path_values else ''}")
    return "\n".join(lines) + "\n"
