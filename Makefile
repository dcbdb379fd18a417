# Embedding.Native — build, demo and test entry points.
#   make demo   builds what it needs and runs the torch-docs example from Python, C and C#
#   make test   runs every test suite (xunit per ISA tier, C consumer + ASan, Python parity per tier)
# Both install their own prerequisites (Debian packages) on a fresh machine.

SHELL        := /bin/bash
PYTHON       := /usr/bin/python3
DOTNET       := dotnet
TIERS        := x86-64-v2 x86-64-v3 x86-64-v4
NATIVE_DIR   := artifacts/native
BUILD_DIR    := artifacts/build
HEADER_DIR   := src/Embedding.Native/include
PYPKG_NATIVE := interop/python/embedding_native/_native/linux-x64
APT_PACKAGES := python3-torch python3-numpy python3-pytest python3-dev libtorch-dev g++
CC           := gcc
CXX          := g++
# torch dispatcher operators for the Python package's plain calls (interop/torch), against Debian's torch
TORCH_OPERATORS := $(PYPKG_NATIVE)/libembedding_native_torch.so
# the CPython extension for numpy arrays' plain calls (interop/numpy): Python's stable ABI, 3.11 on
NUMPY_EXTENSION := $(PYPKG_NATIVE)/_numpy_calls.abi3.so
CFLAGS       := -std=c99 -Wall -Wextra -Werror -O2
# The best tier this CPU and OS run: CPUID + XGETBV, asked of the x86-64-v2 build (_cpu.py), the
# decision the Python loader takes too. Recursive (=) and used only in recipes, so it is expanded
# after `native` has built the library it asks.
HOST_TIER     = $(or $(shell $(PYTHON) interop/python/embedding_native/_cpu.py --library $(NATIVE_DIR)/x86-64-v2/libembedding_native.so),$(error cannot decide this CPU's tier: is $(NATIVE_DIR)/x86-64-v2 built?))
# Each suite appends one line per tier it ran or skipped, starting "native: ", "qemu: " or
# "skipped: " (then why); `make test` prints them at the end, grouped.
TEST_REPORT  := $(BUILD_DIR)/test-report.txt
record        = mkdir -p $(BUILD_DIR) && echo $(1) >>$(TEST_REPORT)

.PHONY: all prereqs build native python-package c-programs csharp-demo demo demo-sharded \
        test test-report-reset test-dotnet test-c test-python bench clean

all: build native python-package

# Debian packages: torch 1.13 (the parity oracle), numpy and pytest for /usr/bin/python3; Python's
# headers for the package's numpy extension; torch's headers and g++ for its torch operators.
prereqs:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

build:
	$(DOTNET) build Embedding.Native.sln -c Release --nologo -v quiet

# One NativeAOT shared library per x86-64 tier: artifacts/native/<tier>/libembedding_native.so
native:
	$(DOTNET) build src/Embedding.Native/Embedding.Native.csproj -t:PublishTiers --nologo -v quiet \
	  -p:NativeTiers='"$(subst $(space),;,$(TIERS))"'

space := $(subst ,, )

# The Python package loads the tier libraries from inside itself, and the torch operators and the
# numpy extension that hand tensors and arrays to whichever tier it loaded.
python-package: native $(TORCH_OPERATORS) $(NUMPY_EXTENSION)
	@for t in $(TIERS); do \
	  mkdir -p $(PYPKG_NATIVE)/$$t && cp $(NATIVE_DIR)/$$t/libembedding_native.so $(PYPKG_NATIVE)/$$t/; \
	done

$(TORCH_OPERATORS): interop/torch/embedding_native_torch.cpp $(HEADER_DIR)/embedding_native.h | prereqs
	@mkdir -p $(@D)
	$(CXX) -std=c++17 -O2 -Wall -Wextra -Werror -shared -fPIC -I$(HEADER_DIR) \
	  -I/usr/include/torch/csrc/api/include -I$$($(PYTHON) -c "import sysconfig; print(sysconfig.get_paths()['include'])") \
	  $< -o $@ -ltorch_python -ltorch -ltorch_cpu -lc10

$(NUMPY_EXTENSION): interop/numpy/embedding_native_numpy.c $(HEADER_DIR)/embedding_native.h | prereqs
	@mkdir -p $(@D)
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -shared -fPIC -I$(HEADER_DIR) \
	  -I$$($(PYTHON) -c "import sysconfig; print(sysconfig.get_paths()['include'])") $< -o $@

# C programs link against the host's best tier; each is also built under AddressSanitizer.
c-programs: native
	@mkdir -p $(BUILD_DIR)
	$(CC) $(CFLAGS) -I$(HEADER_DIR) samples/c/demo.c -L$(NATIVE_DIR)/$(HOST_TIER) -lembedding_native \
	  -Wl,-rpath,'$$ORIGIN/../native/$(HOST_TIER)' -o $(BUILD_DIR)/c_demo
	$(CC) $(CFLAGS) -pthread -I$(HEADER_DIR) tests/c/test_embedding.c -L$(NATIVE_DIR)/$(HOST_TIER) -lembedding_native \
	  -Wl,-rpath,'$$ORIGIN/../native/$(HOST_TIER)' -o $(BUILD_DIR)/test_embedding_c
	$(CC) -std=c99 -pthread -g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -I$(HEADER_DIR) tests/c/test_embedding.c \
	  -L$(NATIVE_DIR)/$(HOST_TIER) -lembedding_native -Wl,-rpath,'$$ORIGIN/../native/$(HOST_TIER)' -o $(BUILD_DIR)/test_embedding_c_asan
	$(CC) $(CFLAGS) -I$(HEADER_DIR) tests/c/test_training.c -L$(NATIVE_DIR)/$(HOST_TIER) -lembedding_native -lm \
	  -Wl,-rpath,'$$ORIGIN/../native/$(HOST_TIER)' -o $(BUILD_DIR)/test_training_c
	$(CC) $(CFLAGS) -I$(HEADER_DIR) tests/c/test_bag.c -L$(NATIVE_DIR)/$(HOST_TIER) -lembedding_native \
	  -Wl,-rpath,'$$ORIGIN/../native/$(HOST_TIER)' -o $(BUILD_DIR)/test_bag_c
	$(CC) $(CFLAGS) -I$(HEADER_DIR) tests/c/test_quantize.c -L$(NATIVE_DIR)/$(HOST_TIER) -lembedding_native -lm \
	  -Wl,-rpath,'$$ORIGIN/../native/$(HOST_TIER)' -o $(BUILD_DIR)/test_quantize_c
	$(CC) -std=c99 -g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -I$(HEADER_DIR) tests/c/test_quantize.c \
	  -L$(NATIVE_DIR)/$(HOST_TIER) -lembedding_native -lm -Wl,-rpath,'$$ORIGIN/../native/$(HOST_TIER)' -o $(BUILD_DIR)/test_quantize_c_asan
	$(CC) $(CFLAGS) -I$(HEADER_DIR) tests/c/test_quantized_bag.c -L$(NATIVE_DIR)/$(HOST_TIER) -lembedding_native -lm \
	  -Wl,-rpath,'$$ORIGIN/../native/$(HOST_TIER)' -o $(BUILD_DIR)/test_quantized_bag_c
	$(CC) $(CFLAGS) -I$(HEADER_DIR) tests/c/test_table_file.c -L$(NATIVE_DIR)/$(HOST_TIER) -lembedding_native \
	  -Wl,-rpath,'$$ORIGIN/../native/$(HOST_TIER)' -o $(BUILD_DIR)/test_table_file_c
	$(CC) -std=c99 -g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -I$(HEADER_DIR) tests/c/test_table_file.c \
	  -L$(NATIVE_DIR)/$(HOST_TIER) -lembedding_native -Wl,-rpath,'$$ORIGIN/../native/$(HOST_TIER)' -o $(BUILD_DIR)/test_table_file_c_asan

csharp-demo:
	$(DOTNET) build samples/csharp/Embedding.Demo/Embedding.Demo.csproj -c Release --nologo -v quiet -o $(BUILD_DIR)/csharp_demo

demo: prereqs python-package c-programs csharp-demo
	$(PYTHON) samples/demo.py --c-demo $(BUILD_DIR)/c_demo --csharp-demo $(BUILD_DIR)/csharp_demo/Embedding.Demo.dll

# A table sharded by rows over two processes (torch.distributed, gloo on 127.0.0.1), trained 20
# steps and checked bit for bit against one process.
demo-sharded: prereqs python-package
	PYTHONPATH=interop/python $(PYTHON) -m embedding_native.torch.distributed --world-size 2

# Each mk/*.mk fragment adds its own targets and appends the suites it owns to EXTRA_TESTS.
EXTRA_TESTS :=
include $(sort $(wildcard mk/*.mk))

test: prereqs test-report-reset test-dotnet test-c test-python $(EXTRA_TESTS)
	@echo "== Where each tier ran =="; \
	for where in native qemu skipped; do \
	  echo "$$where:"; lines=$$(grep "^$$where: " $(TEST_REPORT) | sort | sed "s/^$$where: /  /"); echo "$${lines:-  (none)}"; \
	done
	@echo "All test suites passed."

test-report-reset:
	@mkdir -p $(BUILD_DIR) && rm -f $(TEST_REPORT)

# xunit three times: every width this CPU has, then with AVX-512 off, then with AVX2 off, so the
# Vector512, Vector256 and Vector128 paths all run as the natural best width at least once.
test-dotnet:
	$(DOTNET) build Embedding.Native.sln -c Release --nologo -v quiet
	$(DOTNET) test Embedding.Native.sln -c Release --no-build --nologo
	DOTNET_EnableAVX512=0 $(DOTNET) test Embedding.Native.sln -c Release --no-build --nologo
	DOTNET_EnableAVX2=0 $(DOTNET) test Embedding.Native.sln -c Release --no-build --nologo

test-c: c-programs
	$(BUILD_DIR)/test_embedding_c
	CC=$(CC) tests/c/check_lsan.sh $(NATIVE_DIR)/$(HOST_TIER) $(BUILD_DIR)
	LSAN_OPTIONS=suppressions=tests/c/lsan.supp $(BUILD_DIR)/test_embedding_c_asan
	$(BUILD_DIR)/test_training_c
	$(BUILD_DIR)/test_bag_c
	$(BUILD_DIR)/test_quantize_c
	LSAN_OPTIONS=suppressions=tests/c/lsan.supp $(BUILD_DIR)/test_quantize_c_asan
	$(BUILD_DIR)/test_quantized_bag_c
	$(BUILD_DIR)/test_table_file_c
	LSAN_OPTIONS=suppressions=tests/c/lsan.supp $(BUILD_DIR)/test_table_file_c_asan
	$(PYTHON) tests/c/check_exports.py $(HEADER_DIR)/embedding_native.h $(addprefix $(NATIVE_DIR)/,$(addsuffix /libembedding_native.so,$(TIERS)))
	@$(call record,"native: C tests $(HOST_TIER) (the host's best tier; plain and ASan+UBSan)")

# The parity suite once per NativeAOT tier the CPU can run (tiers it cannot run are skipped with
# the features they lack); fails if a tier the CPU runs ran no parity test.
test-python: prereqs python-package
	$(PYTHON) tests/python/run_tiers.py --report $(TEST_REPORT) $(TIERS)

BENCH_APT := python3-matplotlib

# Side by side with torch: bench/results/side-by-side[-quick].md + one PNG per operation.
#   make bench (full, ~10 min)   make bench QUICK=1 (< 2 min)   make bench THREADS=2
#   make bench TIER=x86-64-v2 (a lower tier than the CPU's best; its files are named -x86-64-v2)
bench: prereqs python-package
	@missing=$$(for p in $(BENCH_APT); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	$(if $(TIER),EMBEDDING_NATIVE_TIER=$(TIER)) $(PYTHON) bench/side_by_side.py $(if $(filter 1 yes true,$(QUICK)),--quick) $(if $(THREADS),--threads $(THREADS))

clean:
	rm -rf artifacts $(PYPKG_NATIVE)
