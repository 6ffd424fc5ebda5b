# make test: the whole suite as CI runs it (scripts/test.sh).
# make fuzz: every fuzz target for FUZZTIME each (default 60s).
FUZZTIME ?= 60s

.PHONY: test fuzz

test:
	./scripts/test.sh

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh
