package auth

import (
	"context"
	"errors"
)

// keeper is the token Store as a Cache's logins use it. A plain Store (or
// none) is a plainStore: a login is the broker call, then a Save. A Store
// shared by several processes (a Leaser) is a sharedStore (lease.go): a
// login takes the account's lease first and may end with a token another
// process saved instead of a broker call.
type keeper interface {
	// load reads the account's token; nothing stored is (nil, nil).
	load(ctx context.Context) (*Token, error)
	// begin readies one login: it returns a ticket saying what to ask the
	// broker for (perhaps starting from a newer token another process
	// saved) or which token to serve instead, or an error when no broker
	// call may be made. proactive marks an ahead-of-expiry renewal.
	begin(ctx context.Context, proactive bool, a attempt) (*ticket, error)
	// save writes t, a token from an interactive login, to the store.
	save(ctx context.Context, t *Token) error
	// keep saves t, the token tk's broker call obtained, and ends tk.
	keep(ctx context.Context, t *Token, tk *ticket) error
	// end gives up whatever begin held; calling it twice is harmless.
	end(tk *ticket)
	// health is why the last call to a shared store failed, nil while it
	// works (and always for a plain store).
	health() error
	// watch keeps the cache in step with tokens other processes save until
	// ctx is done; a plain store returns at once.
	watch(ctx context.Context)
}

// ticket is one login's permission from its keeper.
type ticket struct {
	attempt           // the broker call to make when adopt is nil
	adopt      *Token // serve this token another process obtained instead
	fromMemory bool   // ... which watch already serves
	lease      Lease  // a shared store's lease, held until keep or end
}

// local is the side of a Cache a sharedStore sees.
type local interface {
	// current is the token served and a channel closed at its next change.
	current() (*Token, <-chan struct{})
	// pickup serves st, read from the store, if it is newer than what the
	// cache has. Otherwise it returns the token served when the store
	// should get it back (it lost it, or missed a save), else nil.
	pickup(st *Token) (push *Token)
	// putBack calls save if cur is still the token served and records its
	// result; ok is false when cur was replaced meanwhile.
	putBack(cur *Token, save func() error) (ok bool, err error)
}

// plainStore is a Store only this process uses, or none (s nil).
type plainStore struct {
	name string
	s    Store
}

func (p plainStore) load(ctx context.Context) (*Token, error) {
	if p.s == nil {
		return nil, nil
	}
	t, err := p.s.Load(ctx, p.name)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return t, err
}

func (plainStore) begin(_ context.Context, _ bool, a attempt) (*ticket, error) {
	return &ticket{attempt: a}, nil
}

func (p plainStore) keep(ctx context.Context, t *Token, _ *ticket) error { return p.save(ctx, t) }

// save writes t to the store on a context detached from any one caller.
func (p plainStore) save(ctx context.Context, t *Token) error {
	if p.s == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer cancel()
	return p.s.Save(ctx, p.name, t)
}

func (plainStore) end(*ticket)           {}
func (plainStore) health() error         { return nil }
func (plainStore) watch(context.Context) {}

// newKeeper wraps s: a Leaser is shared with other processes, anything
// else is plain.
func newKeeper(name string, s Store, sh sharedOptions) keeper {
	l, ok := s.(Leaser)
	if !ok {
		return plainStore{name: name, s: s}
	}
	w, _ := s.(Watcher)
	sh.plain = plainStore{name: name, s: s}
	sh.leaser, sh.watcher = l, w
	return &sharedStore{sharedOptions: sh}
}
