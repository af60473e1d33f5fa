#include "CLibraryLoader.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* Libraries opened so far. A handful exist (OpenBLAS, LAPACKE, HDF5), so a small table under a
 * mutex: each call site caches the symbols it resolves, so this runs once per symbol. */
enum { capacity = 8, message_capacity = 1024 };
static struct {
    const quanta_library *library;
    void *handle;
    char error[message_capacity];
} opened[capacity];
static int count;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int entry(const quanta_library *library) {
    for (int i = 0; i < count; i++) if (opened[i].library == library) return i;
    if (count == capacity) return -1;
    opened[count].library = library;
    size_t used = 0;
    opened[count].error[0] = 0;
    for (const char *const *name = library->names; *name; name++) {
        void *handle = dlopen(*name, RTLD_NOW | (library->global ? RTLD_GLOBAL : RTLD_LOCAL));
        if (handle) { opened[count].handle = handle; opened[count].error[0] = 0; return count++; }
        const char *why = dlerror();
        int n = snprintf(opened[count].error + used, message_capacity - used, "%s%s", used ? "; " : "", why ? why : *name);
        if (n > 0) used = used + (size_t)n < message_capacity ? used + (size_t)n : message_capacity - 1;
    }
    return count++;
}

void *quanta_library_handle(const quanta_library *library) {
    pthread_mutex_lock(&lock);
    int i = entry(library);
    void *handle = i < 0 ? NULL : opened[i].handle;
    pthread_mutex_unlock(&lock);
    return handle;
}

const char *quanta_library_error(const quanta_library *library) {
    pthread_mutex_lock(&lock);
    const char *error = "";
    for (int i = 0; i < count; i++) if (opened[i].library == library) error = opened[i].error;
    pthread_mutex_unlock(&lock);
    return error;
}

void *quanta_library_symbol(const quanta_library *library, const char *name) {
    void *handle = quanta_library_handle(library);
    if (!handle) {
        fprintf(stderr, "quanta: error: %s is needed here and cannot be loaded (%s); %s\n",
                library->what, quanta_library_error(library), library->hint);
        exit(69);
    }
    void *symbol = dlsym(handle, name);
    if (!symbol) {
        fprintf(stderr, "quanta: error: %s has no symbol %s (%s); %s\n", library->what, name, library->names[0], library->hint);
        exit(69);
    }
    return symbol;
}
