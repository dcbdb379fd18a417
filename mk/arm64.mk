# mk/arm64.mk — the library on the CPUs it targets, under emulation (qemu-user, no binfmt needed).
#
#   make native-arm64  cross-builds artifacts/native/arm64/libembedding_native.so (linux-arm64,
#                      NEON/Vector128 kernels) with the GNU cross toolchain; clang is not needed
#                      (installing clang would also change the linker of the x64 tiers).
#   make test-arm64    the C consumer tests (gather, backward, renorm, optimizer steps, bags), cross-
#                      compiled with aarch64-linux-gnu-gcc and run under qemu-aarch64-static, plus
#                      the parity harness: bit-identical to the x64 builds' results, emb_isa_tier()
#                      == EMB_ISA_ARM64_NEON.
#   make test-tiers    the x86-64-v2/v3 builds under qemu-x86_64-static CPU models without AVX-512
#                      (-cpu max in qemu 7.2 TCG) and without AVX2 (-cpu Nehalem): C tests, parity,
#                      the runtime's refusal of a higher tier, and the Python loader's tier choice.
# Both run as part of `make test`. Each installs the Debian packages it needs when missing.

PLATFORM_APT     := qemu-user-static gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu libc6-dev-arm64-cross
ARM64_CC         := aarch64-linux-gnu-gcc
QEMU_ARM64       := qemu-aarch64-static -L /usr/aarch64-linux-gnu
QEMU_X64         := qemu-x86_64-static
PLATFORM_BUILD   := $(BUILD_DIR)/platform
PLATFORM_C_TESTS := test_embedding test_training test_bag test_quantized_bag
# test_quantize checks which NaN payload float arithmetic propagates: x86-64 hardware and ARM64 agree
# (and qemu-aarch64 follows ARM), but qemu-x86_64's TCG does not, so it runs on arm64 only.
ARM64_C_TESTS    := $(PLATFORM_C_TESTS) test_quantize
PLATFORM_RUN     := tests/platform/run.sh
# x86-64 CPU models: qemu 7.2's TCG "max" has AVX2/FMA/BMI2 but no AVX-512; Nehalem has SSE4.2, no AVX.
CPU_NO_AVX512    := max
CPU_NO_AVX2      := Nehalem
# (cpu model):(tier) pairs the x86-64 C tests and parity harness run on.
# The Python parity modules run with torch under qemu's CPU without AVX2 (about a minute).
QEMU_PYTHON_TESTS := test_functional.py test_backward.py test_bag_functional.py test_bag_divergences.py \
                     test_bag_backward_order.py test_optim.py
TIER_RUNS        := $(CPU_NO_AVX512):x86-64-v3 $(CPU_NO_AVX512):x86-64-v2 $(CPU_NO_AVX2):x86-64-v2
# (cpu model):(tier) pairs the CPU must refuse (proves each model lacks the next ISA level).
TIER_REFUSALS    := $(CPU_NO_AVX512):x86-64-v4 $(CPU_NO_AVX2):x86-64-v3

EXTRA_TESTS += test-arm64 test-tiers

.PHONY: platform-prereqs native-arm64 test-arm64 test-tiers platform-parity-x64

platform-prereqs:
	@missing=$$(for p in $(PLATFORM_APT); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

native-arm64: platform-prereqs
	$(DOTNET) build src/Embedding.Native/Embedding.Native.csproj -t:PublishTiers --nologo -v quiet -p:NativeTiers=arm64
	@readelf -h $(NATIVE_DIR)/arm64/libembedding_native.so | grep -q 'Machine: *AArch64' || { echo "not an arm64 library"; exit 1; }

# The parity harness on every x86-64 tier this host can run, natively; x86-64-v2 is the reference
# the emulated runs are compared with. Every parity run pins ATEN_CPU_CAPABILITY=avx2: the library
# follows the kernel set torch itself would run on the CPU (docs/exactness.md#torchs-kernel-sets:
# AVX2 on an AVX2 x86 host, the default set on CPUs without AVX2 and on arm64, whose multiply-adds
# GCC fuses there), read from that variable as torch reads it, so pinning it makes every platform
# owe the same bits: fused multiply-adds (in software on the x86-64-v2 models) and AVX2's 2-norm.
PARITY_ENV       := ATEN_CPU_CAPABILITY=avx2
platform-parity-x64: native platform-prereqs
	@mkdir -p $(PLATFORM_BUILD)/x64 $(PLATFORM_BUILD)/parity
	$(CC) $(CFLAGS) -I$(HEADER_DIR) tests/platform/parity.c -L$(NATIVE_DIR)/x86-64-v2 -lembedding_native \
	  -o $(PLATFORM_BUILD)/x64/parity
	@set -e; host=$(HOST_TIER); others=; for t in $(TIERS); do \
	  if [ "$$t" \> "$$host" ]; then echo "SKIP parity $$t: the host CPU runs up to $$host"; \
	    $(call record,"skipped: parity harness $$t (the host CPU runs up to $$host)"); continue; fi; \
	  $(PLATFORM_RUN) "parity $$t (host)" $(PLATFORM_BUILD)/parity/host-$$t.txt -- \
	    env $(PARITY_ENV) LD_LIBRARY_PATH=$(NATIVE_DIR)/$$t $(PLATFORM_BUILD)/x64/parity $(PLATFORM_BUILD)/parity/host-$$t.bin $${t#x86-64-v}; \
	  $(call record,"native: parity harness $$t"); \
	  [ $$t = x86-64-v2 ] || others="$$others $(PLATFORM_BUILD)/parity/host-$$t"; \
	done; \
	if [ -n "$$others" ]; then tests/platform/compare_parity.sh $(PLATFORM_BUILD)/parity/host-x86-64-v2 $$others; fi

test-arm64: native-arm64 platform-parity-x64
	@mkdir -p $(PLATFORM_BUILD)/arm64
	@set -e; for t in $(ARM64_C_TESTS); do \
	  echo "$(ARM64_CC) ... tests/c/$$t.c -> $(PLATFORM_BUILD)/arm64/$$t"; \
	  $(ARM64_CC) $(CFLAGS) -pthread -I$(HEADER_DIR) tests/c/$$t.c -L$(NATIVE_DIR)/arm64 -lembedding_native -lm \
	    -o $(PLATFORM_BUILD)/arm64/$$t; \
	done
	$(ARM64_CC) $(CFLAGS) -I$(HEADER_DIR) tests/platform/parity.c -L$(NATIVE_DIR)/arm64 -lembedding_native \
	  -o $(PLATFORM_BUILD)/arm64/parity
	@set -e; for t in $(ARM64_C_TESTS); do \
	  $(PLATFORM_RUN) "arm64 $$t (qemu-aarch64)" $(PLATFORM_BUILD)/arm64/$$t.log -- \
	    env LD_LIBRARY_PATH=$(CURDIR)/$(NATIVE_DIR)/arm64 $(QEMU_ARM64) $(PLATFORM_BUILD)/arm64/$$t; \
	done
	@# 64 = EMB_ISA_ARM64_NEON; cortex-a53 is a plain ARMv8.0-A core (no dotprod/rdma/lse/sve).
	@set -e; for cpu in max cortex-a53; do \
	  $(PLATFORM_RUN) "parity arm64 (qemu-aarch64 -cpu $$cpu)" $(PLATFORM_BUILD)/parity/arm64-$$cpu.txt -- \
	    env $(PARITY_ENV) LD_LIBRARY_PATH=$(CURDIR)/$(NATIVE_DIR)/arm64 $(QEMU_ARM64) -cpu $$cpu $(PLATFORM_BUILD)/arm64/parity \
	      $(PLATFORM_BUILD)/parity/arm64-$$cpu.bin 64; \
	done
	@grep -q '"architecture":"arm64"' $(PLATFORM_BUILD)/parity/arm64-max.txt || { echo "FAIL: emb_build_info() is not arm64"; exit 1; }
	@grep -q '^tier emb_isa_tier=64 emb_cpu_tier=64 ' $(PLATFORM_BUILD)/parity/arm64-max.txt || { echo "FAIL: tiers are not EMB_ISA_ARM64_NEON"; exit 1; }
	@tests/platform/compare_parity.sh $(PLATFORM_BUILD)/parity/host-x86-64-v2 \
	  $(PLATFORM_BUILD)/parity/arm64-max $(PLATFORM_BUILD)/parity/arm64-cortex-a53
	@$(call record,"qemu: C tests + parity harness arm64 (qemu-aarch64 -cpu max and -cpu cortex-a53)")
	@echo "test-arm64: C tests and parity passed on arm64 (NEON) under qemu-aarch64."

test-tiers: python-package prereqs platform-parity-x64
	@mkdir -p $(PLATFORM_BUILD)/x64
	@set -e; for t in $(PLATFORM_C_TESTS); do \
	  $(CC) $(CFLAGS) -pthread -I$(HEADER_DIR) tests/c/$$t.c -L$(NATIVE_DIR)/x86-64-v2 -lembedding_native -lm \
	    -o $(PLATFORM_BUILD)/x64/$$t; \
	done
	@# Binaries carry no rpath: LD_LIBRARY_PATH picks the tier; the parity run checks emb_isa_tier().
	@set -e; for run in $(TIER_RUNS); do \
	  cpu=$${run%%:*}; tier=$${run#*:}; lib=$(CURDIR)/$(NATIVE_DIR)/$$tier; \
	  for t in $(PLATFORM_C_TESTS); do \
	    $(PLATFORM_RUN) "$$tier $$t (qemu-x86_64 -cpu $$cpu)" $(PLATFORM_BUILD)/x64/$$t-$$cpu-$$tier.log -- \
	      env LD_LIBRARY_PATH=$$lib $(QEMU_X64) -cpu $$cpu $(PLATFORM_BUILD)/x64/$$t; \
	  done; \
	  $(PLATFORM_RUN) "parity $$tier (qemu-x86_64 -cpu $$cpu)" $(PLATFORM_BUILD)/parity/$$cpu-$$tier.txt -- \
	    env $(PARITY_ENV) LD_LIBRARY_PATH=$$lib $(QEMU_X64) -cpu $$cpu $(PLATFORM_BUILD)/x64/parity \
	      $(PLATFORM_BUILD)/parity/$$cpu-$$tier.bin $${tier#x86-64-v}; \
	  $(call record,"qemu: C tests + parity harness $$tier (qemu-x86_64 -cpu $$cpu)"); \
	done
	@set -e; for run in $(TIER_REFUSALS); do \
	  cpu=$${run%%:*}; tier=$${run#*:}; \
	  $(PLATFORM_RUN) "$$tier on qemu-x86_64 -cpu $$cpu" $(PLATFORM_BUILD)/x64/refuse-$$cpu-$$tier.log --expect-abort -- \
	    env LD_LIBRARY_PATH=$(CURDIR)/$(NATIVE_DIR)/$$tier $(QEMU_X64) -cpu $$cpu $(PLATFORM_BUILD)/x64/test_bag; \
	done
	@tests/platform/compare_parity.sh $(PLATFORM_BUILD)/parity/host-x86-64-v2 \
	  $(foreach r,$(TIER_RUNS),$(PLATFORM_BUILD)/parity/$(subst :,-,$(r)))
	$(PYTHON) tests/platform/loader_tiers.py $(CURDIR)
	@$(call record,"qemu: Python loader (qemu-x86_64 -cpu max picks x86-64-v3 and -cpu Nehalem x86-64-v2; both refuse the tiers above)")
	@# torch itself on a CPU without AVX2: its default ATen kernels and caffe2's generic lookups, which no
	@# variable selects on this host, against the x86-64-v2 library the loader picks there.
	@$(PLATFORM_RUN) "python parity with torch on qemu-x86_64 -cpu $(CPU_NO_AVX2)" $(PLATFORM_BUILD)/x64/python-$(CPU_NO_AVX2).log -- \
	  env -u ATEN_CPU_CAPABILITY -u EMBEDDING_NATIVE_TIER -u EMBEDDING_NATIVE_LIBRARY \
	  $(QEMU_X64) -cpu $(CPU_NO_AVX2) $(PYTHON) -m pytest -q -p no:cacheprovider $(addprefix tests/python/,$(QEMU_PYTHON_TESTS))
	@$(call record,"qemu: python parity x86-64-v2 with torch on qemu-x86_64 -cpu $(CPU_NO_AVX2) ($(QEMU_PYTHON_TESTS))")
	@echo "test-tiers: x86-64-v2/v3 builds and the Python loader passed on CPUs without AVX-512 and without AVX2."
