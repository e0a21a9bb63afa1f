package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authproxy/authproxy/auth"
)

// The lease (auth.Leaser) and the announcements (auth.Watcher).

// Lease takes key's lease for ttl, or returns an error wrapping
// auth.ErrLeaseHeld at once when another holder has it. Until Release the
// lease is kept alive (extended every ttl/3); if its holder dies it expires
// ttl later.
func (s *Store) Lease(ctx context.Context, key string, ttl time.Duration) (auth.Lease, error) {
	if ttl < minLeaseTTL {
		return nil, fmt.Errorf("redis token store: account %q: lease ttl %s is shorter than %s", key, ttl, minLeaseTTL)
	}
	l := &lease{
		s:     s,
		key:   key,
		value: s.owner + ":" + randomHex(8),
		ttl:   ttl,
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	fence, err := acquireScript.Run(ctx, s.rdb, []string{s.LeaseKey(key), s.FenceKey(key)}, l.value, ttl.Milliseconds()).Int64()
	if err != nil {
		return nil, fmt.Errorf("redis token store: account %q: lease: %w", key, err)
	}
	if fence == 0 {
		return nil, fmt.Errorf("redis token store: account %q: %w", key, auth.ErrLeaseHeld)
	}
	l.fence = fence
	s.wg.Add(1)
	go l.keepAlive()
	return l, nil
}

// lease is one held lease.
type lease struct {
	s     *Store
	key   string
	value string
	fence int64
	ttl   time.Duration

	once sync.Once
	stop chan struct{}
	done chan struct{}
}

// Fence is the lease's fencing token.
func (l *lease) Fence() int64 { return l.fence }

// Release stops the keep-alive and deletes the lease if it is still ours.
// Calling it again does nothing more.
func (l *lease) Release(ctx context.Context) error {
	first := false
	l.once.Do(func() { first = true; close(l.stop) })
	<-l.done
	if !first {
		return nil
	}
	if err := releaseScript.Run(ctx, l.s.rdb, []string{l.s.LeaseKey(l.key)}, l.value).Err(); err != nil {
		return fmt.Errorf("redis token store: account %q: release lease: %w", l.key, err)
	}
	return nil
}

// keepAlive extends the lease every ttl/3 until Release, or until it finds
// the lease is no longer ours.
func (l *lease) keepAlive() {
	defer l.s.wg.Done()
	defer close(l.done)
	every := l.ttl / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		n, err := extendScript.Run(ctx, l.s.rdb, []string{l.s.LeaseKey(l.key)}, l.value, l.ttl.Milliseconds()).Int64()
		cancel()
		switch {
		case err != nil:
			l.s.log.Warn("could not extend the token lease", "account", l.key, "err", err)
		case n != 1:
			l.s.log.Warn("token lease lost: it expired and may have been taken over", "account", l.key, "fence", l.fence)
			return
		}
	}
}

// Watch returns a channel that receives a value soon after anyone saves
// key's token, and when the connection to Redis is lost or comes back (a
// reader then re-reads: announcements made while it was away are lost).
// Notifications coalesce. The channel is closed once ctx is done.
func (s *Store) Watch(ctx context.Context, key string) <-chan struct{} {
	ch := make(chan struct{}, 1)
	ps := s.rdb.Subscribe(ctx, s.Channel(key))
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(ch)
		defer stop()
		defer ps.Close()
		notify := func() {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		backoff := 100 * time.Millisecond
		healthy := true
		for ctx.Err() == nil {
			msg, err := ps.ReceiveTimeout(ctx, watchIdle)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					if ps.Ping(ctx) == nil {
						continue
					}
				}
				if healthy {
					healthy = false
					s.log.Debug("token watch lost its Redis connection; reconnecting", "account", key, "err", err)
					notify()
				}
				if !sleepCtx(ctx, backoff) {
					return
				}
				backoff = min(backoff*2, watchBackoffMax)
				continue
			}
			backoff = 100 * time.Millisecond
			switch msg.(type) {
			case *redis.Subscription:
				// (Re)subscribed: whatever was announced meanwhile is lost.
				healthy = true
				notify()
			case *redis.Message:
				notify()
			}
		}
	}()
	return ch
}
