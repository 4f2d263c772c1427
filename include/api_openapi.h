/* api_openapi.h - GET /v1/openapi.yaml: the API's OpenAPI 3.1 document, built into the binary. */
#ifndef PAYMENTS_API_OPENAPI_H
#define PAYMENTS_API_OPENAPI_H

#include "http.h"

/*
 * Answers 200 with the bytes of openapi.yaml as the binary was built with
 * them, Content-Type application/yaml. Returns the status sent.
 */
int api_openapi_get(struct http_req *r);

#endif
