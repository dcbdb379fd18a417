# Packaging: the C library installed for C/CMake users, the NuGet package, the Python package,
# each with a consumer test outside the source tree (appended to EXTRA_TESTS, so `make test` runs
# them).
#
#   make install PREFIX=/opt/emb  header, libraries, pkg-config file, CMake package (see below)
#   make uninstall PREFIX=/opt/emb
#   make nuget                    artifacts/package/nuget/Embedding.Native.<version>.nupkg (+ .snupkg)
#   make python-wheel             artifacts/package/python/embedding_native-<version>-py3-none-linux_x86_64.whl
#   make native-host              NativeAOT library for this machine's RID (.so/.dylib/.dll),
#                                 artifacts/native/<rid>/ (what CI does on Windows and macOS)
#   make public-api-update        adds new public C# API to src/Embedding.Native/PublicAPI.Unshipped.txt
#   make test-package             the three consumer tests
#
# Installed layout (PREFIX, DESTDIR as usual):
#   include/embedding_native.h
#   lib/libembedding_native.so                          x86-64-v2 build: runs on every x86-64-v2 CPU
#   lib/embedding_native/<tier>/libembedding_native.so  the faster tiers (x86-64-v3, x86-64-v4)
#   lib/pkgconfig/embedding_native.pc                   -lembedding_native = the x86-64-v2 build
#   lib/cmake/EmbeddingNative/EmbeddingNativeConfig.cmake, ...ConfigVersion.cmake
#                                                       IMPORTED target EmbeddingNative::embedding_native
# The default library is the baseline because a NativeAOT binary aborts at startup on a CPU
# without its instruction set; a program opts into a faster build (link against the tier
# directory, EmbeddingNative_TIER in CMake, or LD_LIBRARY_PATH at run time).

PREFIX            ?= /usr/local
DESTDIR           ?=
PKG_DIR           := artifacts/package
PKG_BASELINE_TIER := x86-64-v2
# Only the x86-64 tiers: other fragments may add other architectures to TIERS.
PKG_FAST_TIERS    := $(filter-out $(PKG_BASELINE_TIER),$(filter x86-64-%,$(TIERS)))
PKG_HEADER        := $(HEADER_DIR)/embedding_native.h
PKG_VERSION       := $(shell sed -n 's/^\#define EMB_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9][0-9]*\).*/\2/p' $(PKG_HEADER) | paste -sd. -)
PKG_APT_PACKAGES  := pkg-config cmake binutils python3-pip python3-setuptools python3-wheel python3-venv
PKG_CSPROJ        := src/Embedding.Native/Embedding.Native.csproj

.PHONY: package-prereqs install install-files uninstall nuget python-wheel native-host public-api-update \
        test-package test-package-c test-package-csharp test-package-python

EXTRA_TESTS += test-package-c test-package-csharp test-package-python

test-package: test-package-c test-package-csharp test-package-python

# Debian packages the consumer tests need, installed only when missing.
package-prereqs:
	@missing=$$(for p in $(PKG_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# ---- C: make install ------------------------------------------------------------------------

install: native
	@$(MAKE) --no-print-directory install-files

# Copies what `make native` built; does not build (the consumer test installs into a fresh prefix).
install-files:
	@test -f $(NATIVE_DIR)/$(PKG_BASELINE_TIER)/libembedding_native.so || { echo "run make native first" >&2; exit 1; }
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/lib/cmake/EmbeddingNative
	install -m 0644 $(PKG_HEADER) $(DESTDIR)$(PREFIX)/include/
	install -m 0755 $(NATIVE_DIR)/$(PKG_BASELINE_TIER)/libembedding_native.so $(DESTDIR)$(PREFIX)/lib/
	@set -e; for t in $(PKG_FAST_TIERS); do \
	  echo "install -m 0755 $(NATIVE_DIR)/$$t/libembedding_native.so $(DESTDIR)$(PREFIX)/lib/embedding_native/$$t/"; \
	  install -d $(DESTDIR)$(PREFIX)/lib/embedding_native/$$t; \
	  install -m 0755 $(NATIVE_DIR)/$$t/libembedding_native.so $(DESTDIR)$(PREFIX)/lib/embedding_native/$$t/; \
	done
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(PKG_VERSION)|g' -e 's|@TIERS@|$(PKG_FAST_TIERS)|g' \
	  packaging/c/embedding_native.pc.in >$(DESTDIR)$(PREFIX)/lib/pkgconfig/embedding_native.pc
	install -m 0644 packaging/cmake/EmbeddingNativeConfig.cmake $(DESTDIR)$(PREFIX)/lib/cmake/EmbeddingNative/
	sed -e 's|@VERSION@|$(PKG_VERSION)|g' packaging/cmake/EmbeddingNativeConfigVersion.cmake.in \
	  >$(DESTDIR)$(PREFIX)/lib/cmake/EmbeddingNative/EmbeddingNativeConfigVersion.cmake

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/embedding_native.h $(DESTDIR)$(PREFIX)/lib/libembedding_native.so \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/embedding_native.pc
	rm -rf $(DESTDIR)$(PREFIX)/lib/embedding_native $(DESTDIR)$(PREFIX)/lib/cmake/EmbeddingNative

# Installs into a fresh prefix under artifacts/, then builds tests/consumers/c from a copy in a
# temporary directory with pkg-config and with CMake, and runs it (faster tiers too, as the CPU allows).
test-package-c: package-prereqs native
	rm -rf $(PKG_DIR)/prefix
	@$(MAKE) --no-print-directory install-files PREFIX=$(abspath $(PKG_DIR)/prefix) >/dev/null
	tests/consumers/c/run.sh $(PKG_DIR)/prefix $(HOST_TIER)

# ---- C#: NuGet package ----------------------------------------------------------------------

# Embedding.Native.<version>.nupkg: lib/net10.0 (+ XML docs), the generator under
# analyzers/dotnet/cs, and the x86-64-v2 C library under runtimes/linux-x64/native.
nuget: native
	rm -rf $(PKG_DIR)/nuget
	$(DOTNET) pack $(PKG_CSPROJ) -c Release --nologo -v quiet -o $(PKG_DIR)/nuget

# Packs, then restores tests/consumers/csharp from a copy in a temporary directory against a
# local feed holding only that package, runs it, and publishes it with NativeAOT (trimmed,
# warnings as errors) and runs the native executable.
test-package-csharp: nuget
	tests/consumers/csharp/run.sh $(PKG_DIR)/nuget $(PKG_VERSION)

# The public API files are checked on every build (RS0016/RS0017); this adds what is new.
# Appends every symbol the analyzer reports as undeclared (RS0016) to PublicAPI.Unshipped.txt.
public-api-update:
	@$(DOTNET) build $(PKG_CSPROJ) -c Release --nologo 2>&1 \
	  | sed -nE "s/.*error RS0016: Symbol '(.*)' is not part of the declared public API.*/\1/p" | sort -u \
	  | tee -a src/Embedding.Native/PublicAPI.Unshipped.txt

# NativeAOT cannot cross-compile between operating systems, so each OS builds its own library
# with this target (CI: .github/workflows/build.yml). On linux-x64 it gives the default-ISA build.
HOST_RID = $(shell $(DOTNET) --info 2>/dev/null | sed -n 's/^ *RID: *//p' | head -n1)
native-host:
	$(DOTNET) publish $(PKG_CSPROJ) -c Release -r $(HOST_RID) --nologo -v quiet -p:EmbCollectNative=true

# ---- Python: pip install interop/python -------------------------------------------------------

python-wheel: native $(TORCH_OPERATORS) $(NUMPY_EXTENSION) package-prereqs
	rm -rf $(PKG_DIR)/python
	$(PYTHON) -m pip wheel --no-build-isolation --no-index --no-deps --disable-pip-version-check -q \
	  -w $(PKG_DIR)/python interop/python

test-package-python: prereqs package-prereqs native $(TORCH_OPERATORS) $(NUMPY_EXTENSION)
	tests/consumers/python/run.sh $(PYTHON)
