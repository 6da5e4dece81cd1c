/*
 * Blocking control API calls for the CLI (serve_api.h), over the HTTP
 * engine's synchronous client. A 401/403 or any other error answer is
 * printed as the daemon worded it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "serve/http.h"
#include "serve_api.h"

const char *cli_api_server(const char *opt)
{
    const char *env = getenv("CAIRN_SERVER");
    if (opt && *opt)
        return opt;
    return env && *env ? env : "http://127.0.0.1:8080";
}

int cli_api_call(void **out, const char *server, const char *method, const char *path,
                 const char *body, int *unreachable)
{
    struct cairn_http_result res;
    const char *token = getenv("CAIRN_TOKEN");
    char url[512], headers[600];
    json_t *j;
    int error;

    *out = NULL;
    if (unreachable)
        *unreachable = 0;
    if (strncmp(server, "http://", 7)) {
        cli_error("server '%s' is not an http:// URL", server);
        return EXIT_USAGE;
    }
    {
        size_t n = strlen(server);
        while (n > 7 && server[n - 1] == '/')
            n--;
        snprintf(url, sizeof(url), "%.*s/api/v1%s", (int)n, server, path);
    }
    if (token && strlen(token) > 400) {
        cli_error("CAIRN_TOKEN is too long");
        return EXIT_USAGE;
    }
    snprintf(headers, sizeof(headers), "%s%s%sContent-Type: application/json\r\n",
             token && *token ? "Authorization: Bearer " : "", token && *token ? token : "",
             token && *token ? "\r\n" : "");
    error =
        cairn_http_request_sync(&res, url, method, headers, body, body ? strlen(body) : 0, 60000);
    if (error < 0) {
        if (unreachable) {
            *unreachable = 1;
            cairn_http_result_release(&res);
            return EXIT_RUNTIME;
        }
        cli_error("cannot reach cairn serve at %s: %s", server, cairn_error_last());
        cairn_http_result_release(&res);
        return EXIT_RUNTIME;
    }
    j = json_loadb(res.body.ptr ? res.body.ptr : "", res.body.len, 0, NULL);
    if (res.status < 200 || res.status > 299) {
        int status = res.status;
        /* A refusal by the release check names the policy: exit 3, as promote does. */
        int gate = status == 409 && json_object_get(j, "policy");
        const char *msg = json_string_value(json_object_get(j, "error"));
        if (res.status == 401 && !(token && *token))
            cli_error("%s (set CAIRN_TOKEN; see cairn token create)", msg ? msg : "unauthorized");
        else
            cli_error("%s (HTTP %d)", msg ? msg : "request failed", res.status);
        json_decref(j);
        cairn_http_result_release(&res);
        return gate ? EXIT_CHECK : status == 400 ? EXIT_USAGE : EXIT_RUNTIME;
    }
    cairn_http_result_release(&res);
    if (!j) {
        cli_error("cairn serve at %s gave an answer that is not JSON", server);
        return EXIT_RUNTIME;
    }
    *out = j;
    return EXIT_OK;
}
