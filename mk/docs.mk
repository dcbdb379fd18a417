# mk/docs.mk — commands the documentation shows, run as written (tests/docs/run_block.sh), so a
# reader who copies them gets a working program.
#
#   make test-docs   README.md, Usage > C: builds samples/c/demo.c with the README's commands
#                    and runs it, from a temporary directory that mirrors the repository root.
# Run by `make test`. (interop/python/README.md's install commands: make test-package-python.)

EXTRA_TESTS += test-docs

.PHONY: test-docs

test-docs: native
	tests/docs/run_block.sh README.md c-demo
