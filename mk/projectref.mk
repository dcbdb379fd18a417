# Embedding.Native used from source through a <ProjectReference>, the way a project that vendors
# the repository uses it (docs/project-reference.md). `make test` runs it.
#
#   make test-projectref   builds tests/consumers/projectref outside the tree: without the generator
#                          reference it must fail with EMB0100; with it, the consumer's own
#                          [EmbeddingKernels(48)] class must be generated and registered

.PHONY: test-projectref

EXTRA_TESTS += test-projectref

test-projectref:
	tests/consumers/projectref/run.sh
