//! Nothing to compile: the function is `templates/welcome.txt`, run by `template-runtime`.
