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
 *   int  fs_c_recursion_limit(void)
 *       The interpreter's fixed C-recursion budget (Py_C_RECURSION_LIMIT), or 0 on
 *       versions where the Python recursion limit also guards the C stack (3.11).
 *   void fs_state_init(fs_state *s, int py_depth, int c_depth)
 *       An empty state for a fiber that has never run: no C frame, no interpreter
 *       frames, no handled exception, no context, Python recursion depth py_depth and
 *       C recursion depth c_depth (ignored where fs_c_recursion_limit() is 0).
 *   void fs_state_set_context(fs_state *s, PyObject *ctx)
 *       Store a context in a state (steals the reference).
 *   int  fs_save(PyThreadState *ts, fs_state *s)
 *       Move the per-context thread-state fields into s (s takes ownership of
 *       the references). Returns the "carry" value that fs_restore must put
 *       back into the incoming context (3.11: the tracing flag of the C frame;
 *       0 on later versions, whose tracing state is per thread).
 *   void fs_restore(PyThreadState *ts, fs_state *s, int carry)
 *       Move s back into the thread state (the thread state takes ownership).
 *   int  fs_run_bottom(void (*body)(void *), void *arg)
 *       Run on the fiber's own stack: install a bottom C frame (3.11/3.12) or an
 *       empty frame chain (3.13), call body(arg), leave the thread state pointing
 *       at nothing on the fiber's stack and return the final carry value.
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
 *   void fs_asyncgen_hooks_get(PyObject **firstiter, PyObject **finalizer)
 *       New references to the calling thread's async-generator hooks (NULL where
 *       unset): what sys.get_asyncgen_hooks() reads, without its struct sequence.
 *   int  fs_asyncgen_hooks_set(PyObject *firstiter, PyObject *finalizer)
 *       Install the thread's hooks (borrowed references; NULL clears one), raising
 *       the same audit events as sys.set_asyncgen_hooks, in the same order. Returns
 *       -1 with an exception set if an audit hook refused (the hooks set before that
 *       stay set, as with sys.set_asyncgen_hooks), else 0. The hooks are fields of
 *       the thread state with the same names in every supported version.
 *
 * Rules (see src/fiber/mod.rs): every function is called with the GIL held on the
 * thread that owns the state; `ts` is that thread's (current) thread state, passed in
 * because save/restore are on the switch path. fs_save/fs_restore never run Python code, never
 * allocate and never touch the error indicator (curexc_* / current_exception), which is
 * deliberately not part of the saved state.
 *
 * Layout of this file: one #if section per CPython minor version, each defining
 * `fs_state` (with the members the common part below uses under the same names:
 * datastack_chunk/top/limit, exc_info, exc_state, context), FS_C_RECURSION_LIMIT,
 * FS_IS_FINALIZING() and the four version-specific functions (init, save, restore,
 * run_bottom); anything else is a build error. The version-independent functions follow
 * the chain. The field table per version is in design/fibers.md.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

#ifdef Py_GIL_DISABLED
#error "trio_asyncio fibers need a CPython build with the GIL (3.11, 3.12 or 3.13); free-threaded builds are not supported"
#endif

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
/* ===================================================================== 3.11 */

#define FS_C_RECURSION_LIMIT 0
#define FS_IS_FINALIZING() _Py_IsFinalizing()

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

void
fs_state_init(fs_state *s, int py_depth, int c_depth)
{
    (void)c_depth; /* 3.11 has no separate C-recursion counter */
    memset(s, 0, sizeof(*s));
    s->recursion_depth = py_depth;
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

#elif PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
/* ===================================================================== 3.12 */

/* Renamed from C_RECURSION_LIMIT to Py_C_RECURSION_LIMIT during 3.12.x. */
#if defined(Py_C_RECURSION_LIMIT)
#define FS_C_RECURSION_LIMIT Py_C_RECURSION_LIMIT
#else
#define FS_C_RECURSION_LIMIT C_RECURSION_LIMIT
#endif
#define FS_IS_FINALIZING() _Py_IsFinalizing()

typedef struct {
    /* C-stack link, as on 3.11 (NULL: never ran). 3.12's _PyCFrame has no tracing
     * flag any more (sys.monitoring keeps tracing state per thread/code object), so
     * nothing is carried between contexts. */
    _PyCFrame *cframe;
    /* Python and C recursion, both saved as depths: Py_SetRecursionLimit rewrites
     * py_recursion_remaining of the running context only, and the C budget is a
     * compile-time constant. */
    int py_recursion_depth;
    int c_recursion_depth;
    /* Trashcan: nesting of deallocations and the chain of objects whose deallocation
     * was deferred; both belong to the context that is unwinding them. The chain
     * holds no references (its objects already reached refcount 0), so the pointer
     * moves as is. */
    int trash_delete_nesting;
    PyObject *trash_delete_later;
    _PyStackChunk *datastack_chunk;
    PyObject **datastack_top;
    PyObject **datastack_limit;
    _PyErr_StackItem *exc_info;
    _PyErr_StackItem exc_state;
    PyObject *context;
} fs_state;

void
fs_state_init(fs_state *s, int py_depth, int c_depth)
{
    memset(s, 0, sizeof(*s));
    s->py_recursion_depth = py_depth;
    s->c_recursion_depth = c_depth;
}

int
fs_save(PyThreadState *ts, fs_state *s)
{
    s->cframe = ts->cframe;
    s->py_recursion_depth = ts->py_recursion_limit - ts->py_recursion_remaining;
    s->c_recursion_depth = FS_C_RECURSION_LIMIT - ts->c_recursion_remaining;
    s->trash_delete_nesting = ts->trash.delete_nesting;
    s->trash_delete_later = ts->trash.delete_later;
    ts->trash.delete_later = NULL;
    s->datastack_chunk = ts->datastack_chunk;
    s->datastack_top = ts->datastack_top;
    s->datastack_limit = ts->datastack_limit;
    s->exc_info = ts->exc_info;
    s->exc_state = ts->exc_state;
    s->context = ts->context; /* ownership moves to s */
    ts->context = NULL;
    ts->exc_state.exc_value = NULL;
    ts->exc_state.previous_item = NULL;
    return 0;
}

void
fs_restore(PyThreadState *ts, fs_state *s, int carry)
{
    (void)carry;
    /* Never ran: park on root_cframe (current_frame is NULL there) until
     * fs_run_bottom installs the fiber's own bottom frame. */
    ts->cframe = s->cframe != NULL ? s->cframe : &ts->root_cframe;
    ts->py_recursion_remaining = ts->py_recursion_limit - s->py_recursion_depth;
    ts->c_recursion_remaining = FS_C_RECURSION_LIMIT - s->c_recursion_depth;
    ts->trash.delete_nesting = s->trash_delete_nesting;
    ts->trash.delete_later = s->trash_delete_later;
    s->trash_delete_later = NULL;
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
    bottom.current_frame = NULL; /* no f_back into the resumer's frames */
    bottom.previous = &ts->root_cframe;
    ts->cframe = &bottom;
    body(arg);
    /* Never leave ts->cframe pointing at this dying C frame: the next fs_save
     * would store it. */
    ts->cframe = &ts->root_cframe;
    return 0;
}

#elif PY_VERSION_HEX >= 0x030D0000 && PY_VERSION_HEX < 0x030E0000
/* ===================================================================== 3.13 */

#define FS_C_RECURSION_LIMIT Py_C_RECURSION_LIMIT
#define FS_IS_FINALIZING() Py_IsFinalizing()

typedef struct {
    /* Top interpreter frame: 3.13 keeps it on the thread state (no _PyCFrame).
     * NULL for a fiber that never ran (its first frame gets no f_back). */
    struct _PyInterpreterFrame *current_frame;
    int py_recursion_depth;
    int c_recursion_depth;
    /* Trashcan: 3.13 counts nesting through c_recursion_remaining; only the chain
     * of deferred deallocations is left (no references held, see 3.12). */
    PyObject *delete_later;
    /* Per-context bookkeeping of the interpreter: the innermost critical section
     * (always 0 on GIL builds, kept for symmetry with the thread state) and the
     * tier-2 executor the last side exit came from (borrowed). */
    uintptr_t critical_section;
    PyObject *previous_executor;
    _PyStackChunk *datastack_chunk;
    PyObject **datastack_top;
    PyObject **datastack_limit;
    _PyErr_StackItem *exc_info;
    _PyErr_StackItem exc_state;
    PyObject *context;
} fs_state;

void
fs_state_init(fs_state *s, int py_depth, int c_depth)
{
    memset(s, 0, sizeof(*s));
    s->py_recursion_depth = py_depth;
    s->c_recursion_depth = c_depth;
}

int
fs_save(PyThreadState *ts, fs_state *s)
{
    s->current_frame = ts->current_frame;
    s->py_recursion_depth = ts->py_recursion_limit - ts->py_recursion_remaining;
    s->c_recursion_depth = FS_C_RECURSION_LIMIT - ts->c_recursion_remaining;
    s->delete_later = ts->delete_later;
    ts->delete_later = NULL;
    s->critical_section = ts->critical_section;
    s->previous_executor = ts->previous_executor;
    s->datastack_chunk = ts->datastack_chunk;
    s->datastack_top = ts->datastack_top;
    s->datastack_limit = ts->datastack_limit;
    s->exc_info = ts->exc_info;
    s->exc_state = ts->exc_state;
    s->context = ts->context; /* ownership moves to s */
    ts->context = NULL;
    ts->exc_state.exc_value = NULL;
    ts->exc_state.previous_item = NULL;
    return 0;
}

void
fs_restore(PyThreadState *ts, fs_state *s, int carry)
{
    (void)carry;
    ts->current_frame = s->current_frame;
    ts->py_recursion_remaining = ts->py_recursion_limit - s->py_recursion_depth;
    ts->c_recursion_remaining = FS_C_RECURSION_LIMIT - s->c_recursion_depth;
    ts->delete_later = s->delete_later;
    s->delete_later = NULL;
    ts->critical_section = s->critical_section;
    ts->previous_executor = s->previous_executor;
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
    ts->current_frame = NULL; /* no f_back into the resumer's frames */
    body(arg);
    /* Every frame body pushed has been popped; leave no pointer into this stack. */
    ts->current_frame = NULL;
    return 0;
}

#else
#error "trio_asyncio fibers support CPython 3.11, 3.12 and 3.13 only; this interpreter is not supported"
#endif

/* ============================================================ every version */

size_t fs_state_size(void) { return sizeof(fs_state); }
unsigned long fs_built_version(void) { return (unsigned long)PY_VERSION_HEX; }
int fs_c_recursion_limit(void) { return FS_C_RECURSION_LIMIT; }
int fs_is_finalizing(void) { return FS_IS_FINALIZING(); }

void
fs_state_set_context(fs_state *s, PyObject *ctx)
{
    PyObject *old = s->context;
    s->context = ctx;
    Py_XDECREF(old);
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

/* ======================================= async-generator hooks (every version) */

void
fs_asyncgen_hooks_get(PyObject **firstiter, PyObject **finalizer)
{
    PyThreadState *ts = PyThreadState_Get();
    *firstiter = Py_XNewRef(ts->async_gen_firstiter);
    *finalizer = Py_XNewRef(ts->async_gen_finalizer);
}

int
fs_asyncgen_hooks_set(PyObject *firstiter, PyObject *finalizer)
{
    PyThreadState *ts = PyThreadState_Get();
    /* sys.set_asyncgen_hooks sets the finalizer first; each set is audited. */
    if (PySys_Audit("sys.set_asyncgen_hook_finalizer", NULL) < 0) {
        return -1;
    }
    Py_XSETREF(ts->async_gen_finalizer, Py_XNewRef(finalizer));
    if (PySys_Audit("sys.set_asyncgen_hook_firstiter", NULL) < 0) {
        return -1;
    }
    Py_XSETREF(ts->async_gen_firstiter, Py_XNewRef(firstiter));
    return 0;
}
