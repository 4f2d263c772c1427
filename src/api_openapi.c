/* api_openapi.c - GET /v1/openapi.yaml: the API's OpenAPI 3.1 document, built into the binary. */
#include "api.h"

#include <stddef.h>

/*
 * The assembler copies openapi.yaml into .rodata at build time (.incbin), so
 * the document served is exactly the one the binary was built with and
 * nothing needs installing beside it. The path is relative to the directory
 * make runs the compiler in, the top of the repository; the Makefile makes
 * this object depend on openapi.yaml so that it is rebuilt when the file
 * changes. Define PAYMENTS_OPENAPI_FILE to build from elsewhere.
 */
#ifndef PAYMENTS_OPENAPI_FILE
#define PAYMENTS_OPENAPI_FILE "openapi.yaml"
#endif

__asm__(".pushsection .rodata\n"
	".global api_openapi_yaml\n"
	".global api_openapi_yaml_end\n"
	"api_openapi_yaml:\n"
	".incbin \"" PAYMENTS_OPENAPI_FILE "\"\n"
	"api_openapi_yaml_end:\n"
	".popsection\n");

extern const char api_openapi_yaml[];
extern const char api_openapi_yaml_end[];

int api_openapi_get(struct http_req *r)
{
	return http_reply_typed(r, 200, "application/yaml", api_openapi_yaml,
				(size_t)(api_openapi_yaml_end - api_openapi_yaml), NULL, 0);
}
