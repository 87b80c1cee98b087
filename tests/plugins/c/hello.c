/*
 * A helpdeskd plugin written in C against plugin-api/include/helpdeskd_plugin.h.
 * On every new ticket it sets the custom field "greeting" and adds a note
 * naming the event id. Built by the plugin tests with
 *   cc -shared -fPIC -I plugin-api/include tests/plugins/c/hello.c -o libhello_c.so
 * -DHD_TEST_ABI=N builds it with a wrong ABI version, -DHD_TEST_NO_ENTRY
 * without its entry symbol: both must be refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpdeskd_plugin.h"

#ifndef HD_TEST_ABI
#define HD_TEST_ABI HD_PLUGIN_ABI_VERSION
#endif

/* Copies a C string into a buffer the daemon frees with free_buffer. */
static int32_t reply(hd_buffer *out, const char *text, int32_t status) {
    size_t len = strlen(text);
    out->ptr = malloc(len ? len : 1);
    if (out->ptr == NULL) {
        out->len = 0;
        return HD_STATUS_ERROR;
    }
    memcpy(out->ptr, text, len);
    out->len = len;
    return status;
}

static int32_t metadata(hd_buffer *out) {
    return reply(out,
                 "{\"name\":\"hello-c\",\"version\":\"1.0.0\",\"hooks\":[\"ticket.created\"]}",
                 HD_STATUS_OK);
}

static int32_t init(const uint8_t *config, size_t config_len, hd_buffer *out) {
    (void)config;
    (void)config_len;
    return reply(out, "{}", HD_STATUS_OK);
}

static int32_t handle(const uint8_t *event, size_t event_len, hd_buffer *out) {
    /* The input is not NUL-terminated: copy it before using string functions. */
    char *copy = malloc(event_len + 1);
    if (copy == NULL) {
        return reply(out, "out of memory", HD_STATUS_ERROR);
    }
    memcpy(copy, event, event_len);
    copy[event_len] = '\0';
    long id = -1;
    const char *at = strstr(copy, "\"id\":");
    if (at != NULL) {
        id = strtol(at + 5, NULL, 10);
    }
    free(copy);
    if (id < 0) {
        return reply(out, "event without id", HD_STATUS_ERROR);
    }
    char answer[256];
    snprintf(answer, sizeof answer,
             "{\"actions\":[{\"type\":\"set_field\",\"name\":\"greeting\",\"value\":\"hello from C\"},"
             "{\"type\":\"add_note\",\"text\":\"hello from C, event %ld\"}]}",
             id);
    return reply(out, answer, HD_STATUS_OK);
}

static void free_buffer(hd_buffer buf) { free(buf.ptr); }

static const hd_plugin_v1 TABLE = {
    .abi_version = HD_TEST_ABI,
    .struct_size = sizeof(hd_plugin_v1),
    .metadata = metadata,
    .init = init,
    .handle = handle,
    .free_buffer = free_buffer,
};

#ifndef HD_TEST_NO_ENTRY
const hd_plugin_v1 *helpdeskd_plugin_v1(void) { return &TABLE; }
#else
const hd_plugin_v1 *not_the_entry_point(void) { return &TABLE; }
#endif
