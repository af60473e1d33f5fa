#ifndef QUANTA_CLIBRARYLOADER_H
#define QUANTA_CLIBRARYLOADER_H
/* Shared libraries that only some commands need (OpenBLAS and LAPACKE, HDF5), opened on first
 * use instead of at start: linked, they and what they link (HDF5 brings curl, krb5, ldap and
 * TLS: 60 libraries in all) were loaded and relocated by every run (a quantize that fails at
 * once: 32.7 ms linked, 14.6 ms opened on use). */

/** A library to open on first use: the names are tried in order with dlopen. */
typedef struct {
    const char *what;          /* for messages, e.g. "OpenBLAS" */
    const char *const *names;  /* NULL-terminated */
    const char *hint;          /* how to install it */
    int global;                /* RTLD_GLOBAL: libraries opened later resolve symbols against it */
} quanta_library;

/** The library's handle, opening it on the first call (thread-safe); NULL when no name opens,
 *  with the reason in `quanta_library_error`. */
void *quanta_library_handle(const quanta_library *library);

/** Why `library` could not be opened ("" when it was, or was not tried yet). */
const char *quanta_library_error(const quanta_library *library);

/** The address of `name` in `library`: exits with status 69 and a message naming the library,
 *  the symbol and how to install it when either is missing (a product cannot go on without it). */
void *quanta_library_symbol(const quanta_library *library, const char *name);

/** Resolves `name` in `library` once per call site: `slot` caches the address. */
#define QUANTA_RESOLVE(library, slot, name) \
    ({ __typeof__(slot) f_ = __atomic_load_n(&(slot), __ATOMIC_ACQUIRE); \
       if (!f_) { f_ = (__typeof__(slot))quanta_library_symbol(library, name); __atomic_store_n(&(slot), f_, __ATOMIC_RELEASE); } \
       f_; })

#define QUANTA_STRING_(x) #x
#define QUANTA_STRING(x) QUANTA_STRING_(x)

/** Defines `ret name params` forwarding to the function of that name in `library`. */
#define QUANTA_FORWARD(library, ret, name, params, args) \
    ret name params { static ret (*slot_) params; return QUANTA_RESOLVE(library, slot_, QUANTA_STRING(name)) args; }
#define QUANTA_FORWARD_VOID(library, name, params, args) \
    void name params { static void (*slot_) params; QUANTA_RESOLVE(library, slot_, QUANTA_STRING(name)) args; }

#endif
