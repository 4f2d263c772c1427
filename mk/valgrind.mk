# valgrind.mk - make valgrind: integration modules with bin/payments under valgrind memcheck.
.PHONY: valgrind
valgrind: all
	@scripts/valgrind.sh
