/*
 * helpdeskd plugin ABI, version 1.
 *
 * A plugin is a shared library exporting one function, helpdeskd_plugin_v1,
 * that returns a pointer to a static hd_plugin_v1 table. Events, configuration
 * and results travel as UTF-8 JSON (the contract is documented in
 * plugin-api/README.md and the plugin-api crate docs).
 *
 * Ownership:
 *   - inputs (config, event) belong to the daemon and are valid during the
 *     call only; they are not NUL-terminated;
 *   - outputs are allocated by the plugin and written to *out; the daemon
 *     copies them and passes the same buffer to free_buffer exactly once
 *     (a C plugin allocates with malloc and frees with free);
 *   - every entry point returns HD_STATUS_OK (*out holds the JSON result) or
 *     HD_STATUS_ERROR (*out holds a UTF-8 message, possibly empty).
 *
 * Calls: metadata, then init once, then handle once per event; never two at
 * once. A crash or a hang costs the supervised host process only.
 */
#ifndef HELPDESKD_PLUGIN_H
#define HELPDESKD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HD_PLUGIN_ABI_VERSION 1u
#define HD_STATUS_OK 0
#define HD_STATUS_ERROR 1
#define HD_ENTRY_SYMBOL "helpdeskd_plugin_v1"

/* A byte buffer allocated by the plugin; ptr may be NULL when len is 0. */
typedef struct hd_buffer {
    uint8_t *ptr;
    size_t len;
} hd_buffer;

typedef struct hd_plugin_v1 {
    /* HD_PLUGIN_ABI_VERSION */
    uint32_t abi_version;
    /* sizeof(hd_plugin_v1) as the plugin was built */
    size_t struct_size;
    /* writes {"name": "...", "version": "...", "hooks": ["ticket.created", ...]} */
    int32_t (*metadata)(hd_buffer *out);
    /* configures the plugin; config is JSON ("null" or empty when none) */
    int32_t (*init)(const uint8_t *config, size_t config_len, hd_buffer *out);
    /* handles one event (JSON); writes {"actions": [...]} */
    int32_t (*handle)(const uint8_t *event, size_t event_len, hd_buffer *out);
    /* releases a buffer this plugin wrote into an out parameter */
    void (*free_buffer)(hd_buffer buf);
} hd_plugin_v1;

/* The one exported symbol. */
const hd_plugin_v1 *helpdeskd_plugin_v1(void);

#ifdef __cplusplus
}
#endif

#endif /* HELPDESKD_PLUGIN_H */
