# Two commands: `make run` (install what is missing, build, start on the dev default) and
# `make test` (build and run every test). Everything else here serves those two.
SHELL := /bin/bash
CONFIG ?= config/switchyard.yaml
SWIFT ?= swift

# Debian packages: the C libraries of the design, and the real peers the tests talk to.
APT_RUN  := libssl-dev libnghttp2-dev libsqlite3-dev libpq-dev openssl
APT_TEST := curl slowhttptest python3 chromium nghttp2-client postgresql
# Python test peers (websockets clients and servers, the Autobahn cases) live in a git-ignored
# venv: `python3` is pyenv's CPython, which Debian's python3-* packages do not serve.
PIP_TEST := websockets==17.4 kosoku==0.1.0 h2==4.3.0
APT_BENCH := nginx-light haproxy wrk nghttp2-client valgrind hyperfine

.PHONY: run test build release deps deps-test deps-bench bench clean check check-config venv

deps:
	@./scripts/apt-ensure.sh $(APT_RUN)

deps-test: deps venv
	@./scripts/apt-ensure.sh $(APT_TEST)

# Rebuilt only when the package list changes.
venv: .venv/.stamp
.venv/.stamp: Makefile
	python3 -m venv .venv
	.venv/bin/pip install -q $(PIP_TEST)
	@touch $@

deps-bench: deps
	@./scripts/apt-ensure.sh $(APT_BENCH)

build: deps
	$(SWIFT) build

# The Swift runtime is linked statically: the process then maps no Foundation/ICU shared
# libraries, which keeps idle RSS under 20 MB (23 MB dynamically linked, measured).
release: deps
	$(SWIFT) build -c release --static-swift-stdlib

run: deps-test release
	@mkdir -p var
	@./scripts/dev-cert.sh var/tls
	./.build/release/switchyard serve --config $(CONFIG)

check-config: build
	./.build/debug/switchyard check --config $(CONFIG)

# The layering of DESIGN.md: what each module may import and link, and that socket calls go
# through IOCore's Sys only (scripts/check-layers.py).
check:
	python3 scripts/check-layers.py

test: deps-test check
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --parallel 2>&1 | tee .build/test.log; exit $${PIPESTATUS[0]}

bench: deps-bench release
	./bench/http1.sh

clean:
	rm -rf .build var
