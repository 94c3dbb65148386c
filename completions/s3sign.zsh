#compdef s3sign

_s3sign_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _S3SIGN_COMPLETE=complete_zsh s3sign)
}

compdef _s3sign_completion s3sign
