_s3sign_completion() {
    local IFS=$'
'
    COMPREPLY=( $( env COMP_WORDS="${COMP_WORDS[*]}" \
                   COMP_CWORD=$COMP_CWORD \
                   _S3SIGN_COMPLETE=complete_bash $1 ) )
    return 0
}

complete -o default -F _s3sign_completion s3sign
