# bash completion for flagserver(1)                        -*- shell-script -*-
#
# Installed as share/bash-completion/completions/flagserver, where
# bash-completion loads it the first time flagserver is completed; or
# source it from ~/.bashrc.  It needs nothing from the bash-completion
# package.
#
# Adding an option: add it to _flagserver_options, and to the case in
# _flagserver when it takes a value.  The ctest test
# package_manpage_flagserver fails until this list matches
# "flagserver --help".

_flagserver_options='-h --help --preset --port --bind --directory --delay
    --error-rate --seed --max-inflight --idle-timeout --quiet'

_flagserver()
{
    local cur prev opt prefix
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    prefix=

    # "--preset=NAME": readline splits words at '=' (see COMP_WORDBREAKS),
    # giving "--preset" "=" "NAME"; without that split the word is whole.
    if [[ $cur == = ]]; then
        opt=$prev
        cur=
    elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
        opt=${COMP_WORDS[COMP_CWORD - 2]}
    elif [[ $cur == --*=* ]]; then
        opt=${cur%%=*}
        prefix=$opt=
        cur=${cur#*=}
    else
        opt=$prev
    fi

    case $opt in
    --preset)
        mapfile -t COMPREPLY < <(compgen -P "$prefix" -W 'local delay error' -- "$cur")
        return 0
        ;;
    --directory)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
        [[ -n $prefix ]] && COMPREPLY=("${COMPREPLY[@]/#/$prefix}")
        return 0
        ;;
    --bind)
        mapfile -t COMPREPLY < <(compgen -P "$prefix" -W '127.0.0.1 ::1 0.0.0.0 ::' -- "$cur")
        return 0
        ;;
    --port | --delay | --error-rate | --seed | --max-inflight | --idle-timeout)
        # A number: nothing to offer.
        return 0
        ;;
    esac

    # flagserver takes no operands: only options are left to offer.
    mapfile -t COMPREPLY < <(compgen -W "$_flagserver_options" -- "$cur")
    return 0
}

complete -F _flagserver flagserver
