# bash completion for getflags(1)                          -*- shell-script -*-
#
# Installed as share/bash-completion/completions/getflags, where
# bash-completion loads it the first time getflags is completed; or source
# it from ~/.bashrc.  It needs nothing from the bash-completion package.
#
# Adding an option: add it to _getflags_options, and to the case in
# _getflags when it takes a value.  Long options may be abbreviated to any
# unambiguous prefix, as getflags takes them ("--serv LOCAL").  The ctest test package_manpage_getflags
# fails until this list matches "getflags --help".

_getflags_options='-h --help -a --all -e --every -l --limit -m --max_req
    -s --server -v --verbose -q -o --timeout --cacert --json --version
    --retries --max-size --sweep --rate --update --retry-failed --wait-lock
    --http1.1 --http2'
_getflags_labels='LOCAL REMOTE DELAY ERROR'

# The country codes of the flag mirror installed next to the program
# (<bin>/../share/getflags/flags_data/country_codes.txt), if there is one.
_getflags_codes()
{
    local exe list
    exe=$(type -P -- "$1" 2>/dev/null) || return 0
    list=${exe%/*}/../share/getflags/flags_data/country_codes.txt
    [[ -r $list ]] && cat -- "$list"
}

_getflags()
{
    local cur prev opt prefix i word codes_only
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    prefix=

    # "--cacert=FILE": readline splits words at '=' (see COMP_WORDBREAKS),
    # giving "--cacert" "=" "FILE"; without that split the word is whole.
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

    # After "--" every word is a country code.
    codes_only=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        if [[ ${COMP_WORDS[i]} == -- ]]; then
            codes_only=1
            opt=
            break
        fi
    done

    # An abbreviated long option is the one it stands for, if only one.
    if [[ $opt == --?* && " ${_getflags_options//$'\n'/ } " != *" $opt "* ]]; then
        mapfile -t word < <(compgen -W "$_getflags_options" -- "$opt")
        ((${#word[@]} == 1)) && opt=${word[0]}
    fi

    case $opt in
    -s | --server)
        for word in $_getflags_labels; do
            [[ ${word,,} == "${cur,,}"* ]] && COMPREPLY+=("$prefix$word")
        done
        if [[ -n $cur ]]; then
            for word in http:// https://; do
                if [[ $word == "${cur,,}"* && $word != "${cur,,}" ]]; then
                    COMPREPLY+=("$prefix$word")
                    compopt -o nospace 2>/dev/null
                fi
            done
        fi
        return 0
        ;;
    -o)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
        [[ -n $prefix ]] && COMPREPLY=("${COMPREPLY[@]/#/$prefix}")
        return 0
        ;;
    --cacert)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        [[ -n $prefix ]] && COMPREPLY=("${COMPREPLY[@]/#/$prefix}")
        return 0
        ;;
    -m | --max_req)
        # A number, or auto.
        mapfile -t COMPREPLY < <(compgen -W auto -- "$cur")
        return 0
        ;;
    -l | --limit | --timeout | --retries | --max-size | --sweep | --rate)
        # A number: nothing to offer.
        return 0
        ;;
    esac

    if [[ $cur == -* && $codes_only == 0 ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$_getflags_options" -- "$cur")
        return 0
    fi

    # A country code, offered in upper case; typed letters match in any case.
    for word in $(_getflags_codes "${COMP_WORDS[0]}"); do
        [[ $word == "${cur^^}"* ]] && COMPREPLY+=("$word")
    done
    return 0
}

complete -F _getflags getflags
