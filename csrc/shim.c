/*
 * shim.c -- the only code in trio_asyncio._engine that reads or writes CPython
 * interpreter internals. Rust sees the saved state as an opaque, fixed-size buffer
 * (src/fiber/state.rs) and calls the functions below.
 *
 * ACCESSOR CONTRACT (every supported CPython version provides all of these):
 *
 *   size_t fs_state_size(void)
 *       sizeof(fs_state); Rust checks it fits its buffer (FS_STATE_CAPACITY).
 *   unsigned long fs_built_version(void)
 *       PY_VERSION_HEX of the headers this file was compiled against.
 *   void fs_state_init(fs_state *s, int initial_depth)
 *       An empty state for a fiber that has never run: no C frame, no interpreter
 *       frames, no handled exception, no context, recursion depth initial_depth.
 *   void fs_state_set_context(fs_state *s, PyObject *ctx)
 *       Store a context in a state (steals the reference).
 *   int  fs_save(PyThreadState *ts, fs_state *s)
 *       Move the per-context thread-state fields into s (s takes ownership of
 *       the references). Returns the "carry" value that fs_restore must put
 *       back into the incoming context (3.11: the tracing flag of the C frame).
 *   void fs_restore(PyThreadState *ts, fs_state *s, int carry)
 *       Move s back into the thread state (the thread state takes ownership).
 *   int  fs_run_bottom(void (*body)(void *), void *arg)
 *       Run on the fiber's own stack: install a bottom C frame (3.11/3.12),
 *       call body(arg), leave the thread state pointing at no fiber C frame and
 *       return the final carry value.
 *   void fs_state_clear(fs_state *s)
 *       Release a FINISHED fiber's state: drop the context and exception refs
 *       and free its (empty) data-stack chunks. May run Python code (decref).
 *   void fs_state_drop_refs(fs_state *s)
 *       Drop only the context/exception refs of a state (tp_clear); the state
 *       stays resumable. May run Python code.
 *   size_t fs_state_refs(const fs_state *s, PyObject **out, size_t n)
 *       Borrowed references owned by s, for tp_traverse. Returns the count.
 *   void *fs_state_take_chunk(fs_state *s)
 *       For a FINISHED fiber's state: detach and return its data-stack root chunk
 *       if it is the only chunk and empty (to recycle it), else NULL.
 *   void fs_state_give_chunk(fs_state *s, void *chunk)
 *       For a never-run state: use a chunk from fs_state_take_chunk as its
 *       (empty) data-stack root chunk, saving the allocation on first frame push.
 *   void fs_free_chunk(void *chunk)
 *       Free a chunk from fs_state_take_chunk (no GIL needed: arena allocator).
 *   int  fs_is_finalizing(void)
 *       Non-zero once interpreter finalization has started (no kill attempts then).
 *
 * Rules (see src/fiber/mod.rs): every function is called with the GIL held on the
 * thread that owns the state; `ts` is that thread's (current) thread state, passed in
 * because save/restore are on the switch path. fs_save/fs_restore never run Python code, never
 * allocate and never touch the error indicator (curexc_*), which is deliberately
 * not part of the saved state.
 *
 * One #if section per CPython minor version; anything else is a build error.
 * 3.12/3.13 are planned (field lists in /work/shared/fibers.md §1.1); add a new
 * section rather than editing the 3.11 one.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
/* ===================================================================== 3.11 */

typedef struct {
    /* C-stack link. NULL means "never ran": restore installs root_cframe until
     * fs_run_bottom puts the fiber's own bottom frame in place. The cframe lives
     * on the owning context's C stack and carries current_frame with it. */
    _PyCFrame *cframe;
    /* Python recursion, saved as a depth (limit - remaining) so that a
     * Py_SetRecursionLimit between switches keeps it right. */
    int recursion_depth;
    int trash_delete_nesting;
    /* Interpreter-frame data stack. */
    _PyStackChunk *datastack_chunk;
    PyObject **datastack_top;
    PyObject **datastack_limit;
    /* Handled-exception stack (sys.exc_info). exc_info may point at the thread
     * state's own exc_state, which is why that struct moves too. */
    _PyErr_StackItem *exc_info;
    _PyErr_StackItem exc_state;
    /* contextvars context (owned). */
    PyObject *context;
} fs_state;

size_t fs_state_size(void) { return sizeof(fs_state); }
unsigned long fs_built_version(void) { return (unsigned long)PY_VERSION_HEX; }

void
fs_state_init(fs_state *s, int initial_depth)
{
    memset(s, 0, sizeof(*s));
    s->recursion_depth = initial_depth;
}

void
fs_state_set_context(fs_state *s, PyObject *ctx)
{
    PyObject *old = s->context;
    s->context = ctx;
    Py_XDECREF(old);
}

int
fs_save(PyThreadState *ts, fs_state *s)
{
    s->cframe = ts->cframe;
    s->recursion_depth = ts->recursion_limit - ts->recursion_remaining;
    s->trash_delete_nesting = ts->trash_delete_nesting;
    s->datastack_chunk = ts->datastack_chunk;
    s->datastack_top = ts->datastack_top;
    s->datastack_limit = ts->datastack_limit;
    s->exc_info = ts->exc_info;
    s->exc_state = ts->exc_state;
    s->context = ts->context; /* ownership moves to s */
    ts->context = NULL;
    ts->exc_state.exc_value = NULL;
    ts->exc_state.previous_item = NULL;
    /* 3.11 caches "is tracing on" per C frame; the outgoing value is the
     * current truth (sys.settrace may have run in this context). */
    return ts->cframe->use_tracing;
}

void
fs_restore(PyThreadState *ts, fs_state *s, int carry)
{
    if (s->cframe != NULL) {
        ts->cframe = s->cframe;
        ts->cframe->use_tracing = (uint8_t)carry;
    }
    else {
        /* Never ran: park on root_cframe (current_frame is NULL there) until
         * fs_run_bottom installs the fiber's own bottom frame. */
        ts->cframe = &ts->root_cframe;
    }
    ts->recursion_remaining = ts->recursion_limit - s->recursion_depth;
    ts->trash_delete_nesting = s->trash_delete_nesting;
    ts->datastack_chunk = s->datastack_chunk;
    ts->datastack_top = s->datastack_top;
    ts->datastack_limit = s->datastack_limit;
    ts->exc_state = s->exc_state;
    ts->exc_info = s->exc_info != NULL ? s->exc_info : &ts->exc_state;
    ts->context = s->context; /* ownership moves to the thread state */
    ts->context_ver++;        /* invalidate ContextVar.get caches */
    s->context = NULL;
    s->exc_state.exc_value = NULL;
    s->exc_state.previous_item = NULL;
    s->datastack_chunk = NULL;
}

int
fs_run_bottom(void (*body)(void *), void *arg)
{
    PyThreadState *ts = PyThreadState_GET();
    _PyCFrame bottom;
    bottom.use_tracing =
        (ts->tracing == 0 && (ts->c_tracefunc != NULL || ts->c_profilefunc != NULL))
            ? 255 : 0;
    bottom.current_frame = NULL; /* no f_back into the resumer's frames */
    bottom.previous = &ts->root_cframe;
    ts->cframe = &bottom;
    body(arg);
    /* Eval loops copy their tracing flag back on exit, so ts->cframe (== &bottom)
     * holds the final value. Never leave ts->cframe pointing at this dying C
     * frame: the next fs_save would read it. */
    int carry = ts->cframe->use_tracing;
    ts->cframe = &ts->root_cframe;
    return carry;
}

static void
free_datastack(_PyStackChunk *chunk)
{
    PyObjectArenaAllocator alloc;
    PyObject_GetArenaAllocator(&alloc);
    while (chunk != NULL) {
        _PyStackChunk *prev = chunk->previous;
        /* Same allocator CPython's _PyObject_VirtualFree uses for chunks.
         * Re-check on every minor release (fibers.md §1.2). */
        alloc.free(alloc.ctx, chunk, chunk->size);
        chunk = prev;
    }
}

void
fs_state_drop_refs(fs_state *s)
{
    Py_CLEAR(s->context);
    Py_CLEAR(s->exc_state.exc_value);
}

void
fs_state_clear(fs_state *s)
{
    _PyStackChunk *chunk = s->datastack_chunk;
    s->datastack_chunk = NULL;
    s->datastack_top = NULL;
    s->datastack_limit = NULL;
    free_datastack(chunk);
    fs_state_drop_refs(s);
}

size_t
fs_state_refs(const fs_state *s, PyObject **out, size_t n)
{
    size_t k = 0;
    if (s->context != NULL && k < n) out[k++] = s->context;
    if (s->exc_state.exc_value != NULL && k < n) out[k++] = s->exc_state.exc_value;
    return k;
}

/* Data-stack chunk recycling. Without it every fiber's first frame push maps a fresh
 * 16 KiB root chunk and its finish unmaps it (mmap + page faults + munmap: ~8 us, the
 * dominant cost of create+call+finish). A root chunk (previous == NULL) keeps data[0]
 * unused so it is never popped; an empty one has top == &data[1]. */
void *
fs_state_take_chunk(fs_state *s)
{
    _PyStackChunk *chunk = s->datastack_chunk;
    if (chunk == NULL || chunk->previous != NULL || s->datastack_top != &chunk->data[1]) {
        return NULL;
    }
    s->datastack_chunk = NULL;
    s->datastack_top = NULL;
    s->datastack_limit = NULL;
    return chunk;
}

void
fs_state_give_chunk(fs_state *s, void *p)
{
    _PyStackChunk *chunk = (_PyStackChunk *)p;
    chunk->previous = NULL;
    chunk->top = 0;
    s->datastack_chunk = chunk;
    s->datastack_top = &chunk->data[1];
    s->datastack_limit = (PyObject **)(((char *)chunk) + chunk->size);
}

void
fs_free_chunk(void *p)
{
    free_datastack((_PyStackChunk *)p);
}

int fs_is_finalizing(void) { return _Py_IsFinalizing(); }

#else
#error "trio_asyncio fibers support CPython 3.11 only (3.12/3.13 planned); this interpreter is not supported"
#endif
