/* probe.c — the smallest fuzz target: tests/fuzz/meson.build links it to
 * learn whether clang's fuzzer and sanitizer runtimes are installed. */
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)data;
	(void)size;
	return 0;
}
