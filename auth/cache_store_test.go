package auth

// A Cache and its Store: loading at startup, saving before serving.

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authproxy/authproxy/auth/authtest"
)

func TestCacheLoad(t *testing.T) {
	clk := authtest.Fixed(t0)
	t.Run("valid token is served without login", func(t *testing.T) {
		store := newMemStore()
		stored := &Token{Access: "saved", Obtained: t0.Add(-time.Minute), Expiry: t0.Add(time.Hour)}
		store.tokens["acct"] = stored
		b := &fakeBroker{now: clk.Now, life: time.Hour}
		c := NewCache("acct", b, store, CacheOptions{Now: clk.Now})
		if err := c.Load(t.Context()); err != nil {
			t.Fatal(err)
		}
		got, err := c.Token(t.Context())
		if err != nil || got != stored {
			t.Fatalf("Token = %v, %v; want the stored token", got, err)
		}
		if n := b.logins.Load(); n != 0 {
			t.Errorf("logins = %d, want 0", n)
		}
	})
	t.Run("expired token is ignored", func(t *testing.T) {
		store := newMemStore()
		stored := &Token{Access: "saved", Expiry: t0.Add(-time.Second)}
		store.tokens["acct"] = stored
		b := &fakeBroker{now: clk.Now, life: time.Hour}
		c := NewCache("acct", b, store, CacheOptions{Now: clk.Now})
		if err := c.Load(t.Context()); err != nil {
			t.Fatal(err)
		}
		if st := c.Status(); st.HasToken || st.State == StateReady {
			t.Errorf("status after loading an expired token = %+v", st)
		}
		got, err := c.Token(t.Context())
		if err != nil || got == stored || got.Access == "saved" {
			t.Fatalf("Token = %v, %v; want a fresh login", got, err)
		}
		if n := b.logins.Load(); n != 1 {
			t.Errorf("logins = %d, want 1", n)
		}
		if store.get("acct") != got {
			t.Error("new token not saved over the expired one")
		}
	})
	t.Run("expired token with refresh secret is refreshed", func(t *testing.T) {
		store := newMemStore()
		stored := &Token{Access: "saved", Refresh: "r", Expiry: t0.Add(-time.Second)}
		store.tokens["acct"] = stored
		b := &refreshBroker{fakeBroker: &fakeBroker{now: clk.Now, life: time.Hour}}
		c := NewCache("acct", b, store, CacheOptions{Now: clk.Now})
		if err := c.Load(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Token(t.Context()); err != nil {
			t.Fatal(err)
		}
		if r, l := b.refreshes.Load(), b.logins.Load(); r != 1 || l != 0 || b.lastOld.Load() != stored {
			t.Errorf("refreshes, logins = %d, %d; want 1, 0 with the stored token", r, l)
		}
	})
	t.Run("nothing stored", func(t *testing.T) {
		c := NewCache("acct", &fakeBroker{now: clk.Now}, newMemStore(), CacheOptions{Now: clk.Now})
		if err := c.Load(t.Context()); err != nil {
			t.Fatalf("Load of an empty store: %v", err)
		}
		if st := c.Status().State; st != StateEmpty {
			t.Errorf("state = %q, want empty", st)
		}
	})
	t.Run("restart with a FileStore", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tokens.json")
		b := &fakeBroker{now: clk.Now, life: time.Hour}
		c1 := NewCache("acct", b, NewFileStore(path), CacheOptions{Now: clk.Now})
		t1, err := c1.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		c2 := NewCache("acct", b, NewFileStore(path), CacheOptions{Now: clk.Now})
		if err := c2.Load(t.Context()); err != nil {
			t.Fatal(err)
		}
		t2, err := c2.Token(t.Context())
		if err != nil || t2.Access != t1.Access || !t2.Expiry.Equal(t1.Expiry) {
			t.Fatalf("after restart Token = %v, %v; want the saved token", t2, err)
		}
		if n := b.logins.Load(); n != 1 {
			t.Errorf("logins = %d, want 1", n)
		}
	})
	t.Run("unreadable store", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tokens.json")
		writeFile(t, path, "{not json")
		c := NewCache("acct", &fakeBroker{now: clk.Now}, NewFileStore(path), CacheOptions{Now: clk.Now})
		err := c.Load(t.Context())
		if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"acct"`) {
			t.Fatalf("Load of corrupt store = %v, want an error naming the account", err)
		}
	})
}

func TestCacheSavesBeforeServing(t *testing.T) {
	t.Run("login", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			store := newMemStore()
			store.gate = make(chan struct{})
			b := &fakeBroker{now: time.Now, life: time.Hour}
			c := NewCache("acct", b, store, CacheOptions{})
			var got *Token
			done := make(chan struct{})
			go func() { got, _ = c.Token(t.Context()); close(done) }()
			synctest.Wait()
			select {
			case <-done:
				t.Fatal("Token returned before the save finished")
			default:
			}
			if c.Status().HasToken {
				t.Fatal("token served before the save finished")
			}
			close(store.gate)
			<-done
			if store.get("acct") != got || got == nil {
				t.Fatal("returned token is not the stored one")
			}
		})
	})
	t.Run("set", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			store := newMemStore()
			store.gate = make(chan struct{})
			b := &browserBroker{&fakeBroker{now: time.Now}}
			c := NewCache("acct", b, store, CacheOptions{})
			tok := &Token{Access: "interactive", Expiry: time.Now().Add(time.Hour)}
			done := make(chan error)
			go func() { done <- c.Set(t.Context(), tok) }()
			synctest.Wait()
			if _, err := c.Token(t.Context()); !errors.Is(err, ErrLoginRequired) {
				t.Fatalf("Token while Set is saving = %v, want ErrLoginRequired", err)
			}
			close(store.gate)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			got, err := c.Token(t.Context())
			if err != nil || got.Access != "interactive" || got.Obtained.IsZero() {
				t.Fatalf("Token after Set = %v, %v", got, err)
			}
			if store.get("acct").Access != "interactive" {
				t.Error("Set did not store the token")
			}
			if st := c.Status(); st.State != StateReady || st.Logins != 1 {
				t.Errorf("status = %+v", st)
			}
		})
	})
	t.Run("save error is surfaced, token still served", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			store := newMemStore()
			store.err = errors.New("disk full")
			b := &fakeBroker{now: time.Now, life: time.Hour}
			c := NewCache("acct", b, store, CacheOptions{})
			if _, err := c.Token(t.Context()); err != nil {
				t.Fatalf("Token with failing store: %v", err)
			}
			if st := c.Status(); !strings.Contains(st.LastError, "disk full") || st.State != StateReady {
				t.Errorf("status = %+v, want ready with the save error", st)
			}
		})
	})
}
