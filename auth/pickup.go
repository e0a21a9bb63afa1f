package auth

import "errors"

// The cache's side of a shared store's watch (lease.go): what a sharedStore
// may see and change of the token served. A plain store never calls these.

// current is the token served and a channel closed at its next change.
func (c *Cache) current() (*Token, <-chan struct{}) {
	c.mu.Lock()
	changed := c.changed
	c.mu.Unlock()
	return c.cur.Load(), changed
}

// pickup serves st, a token another process saved, when it is newer than
// the one served; otherwise it returns the token served if the store
// should get it back (it lost it, or was unreachable when it was saved).
func (c *Cache) pickup(st *Token) (push *Token) {
	now := c.now()
	c.mu.Lock()
	cur := c.cur.Load()
	ref := cur
	if ref == nil {
		ref = c.last // after Invalidate: the token the broker rejected
	}
	// A token whose fenced save was refused lost to the store's.
	superseded := errors.Is(c.saveErr, ErrLeaseLost)
	if st.Valid(now) && (ref == nil || st.Access != ref.Access) &&
		(!cur.Valid(now) || superseded || !st.Obtained.Before(cur.Obtained)) {
		if c.restorer != nil {
			c.restorer.Restore(st)
		}
		c.serveLocked(st, now, false, nil)
		c.saveErr = nil
		c.mu.Unlock()
		c.log.Info("picked up a token another authproxy saved", "expires", st.Expiry)
		c.emit(EventSynced, nil)
		return nil
	}
	back := cur.Valid(now) && c.flight == nil &&
		(!st.Valid(now) || (c.saveErr != nil && !superseded && st.Access != cur.Access && cur.Obtained.After(st.Obtained)))
	c.mu.Unlock()
	if !back {
		return nil
	}
	return cur
}

// putBack calls save if cur is still the token served, and records its
// result as the save error; ok is false when cur was replaced meanwhile.
func (c *Cache) putBack(cur *Token, save func() error) (ok bool, err error) {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	if c.cur.Load() != cur {
		return false, nil
	}
	err = save()
	c.mu.Lock()
	if c.cur.Load() == cur {
		c.saveErr = err
	}
	c.mu.Unlock()
	return true, err
}
