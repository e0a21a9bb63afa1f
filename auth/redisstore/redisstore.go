// Package redisstore keeps authproxy's tokens in Redis, so that several
// authproxy processes (on one machine or many) share one token per account
// instead of each logging in on its own.
//
// A Store implements auth.Store, and the two optional interfaces auth.Cache
// uses to coordinate the processes sharing it:
//
//   - auth.Leaser: a lease per account (SET NX PX, a fencing token from INCR,
//     release by a compare-and-delete script) taken around every login or
//     refresh, kept alive while its holder works and expiring when the holder
//     dies; a save from a holder that another holder has since superseded is
//     refused by a script that checks the fence;
//   - auth.Watcher: a pub/sub channel per account, "<prefix>token:<account>",
//     published on every save, so the other processes pick a new token up at
//     once.
//
// Tokens are encrypted with AES-256-GCM under the [store] key (a random nonce
// per write, the account name bound in as additional data): Redis never sees
// a token or secret in the clear.
//
// Redis keys, with the default prefix "authproxy:":
//
//	authproxy:token:<account>   the encrypted token
//	authproxy:lease:<account>   the lease (a random value; expires)
//	authproxy:fence:<account>   the fencing counter (INCR per lease and per plain save)
package redisstore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/authproxy/authproxy/auth"
)

// DefaultPrefix starts every Redis key and channel the store uses.
const DefaultPrefix = "authproxy:"

// KeySize is the length of the encryption key: AES-256.
const KeySize = 32

const (
	// recordVersion is the first byte of every stored value.
	recordVersion = 1
	// maxRecord bounds what Load decrypts.
	maxRecord = 1 << 20
	// minLeaseTTL is the shortest lease accepted.
	minLeaseTTL = 30 * time.Millisecond
	// watchIdle is how long a watcher waits for a message before it pings.
	watchIdle = 30 * time.Second
	// watchBackoffMax bounds the pause between reconnection attempts.
	watchBackoffMax = 2 * time.Second
	// savedMessage is what a save publishes: never the token itself.
	savedMessage = "saved"
)

// Timeouts applied when the URL does not set its own.
const (
	defaultDialTimeout = 2 * time.Second
	defaultIOTimeout   = 2 * time.Second
)

// Options configure a Store.
type Options struct {
	// URL is redis://[[user]:password@]host[:port][/db], rediss://... (TLS)
	// or unix://...; it is read by redis.ParseURL, so its query may set
	// go-redis options (dial_timeout=, read_timeout=, pool_size= ...).
	URL string
	// Key is the 32-byte AES-256 key; see ParseKey.
	Key []byte
	// Prefix starts every key and channel; default DefaultPrefix.
	Prefix string
	// RootCAs, when set, replaces the system roots for verifying a
	// rediss:// server.
	RootCAs *x509.CertPool
	// Logger receives lease and connection notes; nil discards them.
	Logger *slog.Logger
}

// Store is a token store in Redis. It is safe for concurrent use.
type Store struct {
	rdb    *redis.Client
	aead   cipher.AEAD
	prefix string
	log    *slog.Logger
	owner  string // random id of this Store, the first half of lease values

	wg sync.WaitGroup // lease keep-alives and watchers
}

var (
	_ auth.Store   = (*Store)(nil)
	_ auth.Leaser  = (*Store)(nil)
	_ auth.Watcher = (*Store)(nil)
)

// ParseKey decodes a [store] key: base64 (standard or URL alphabet, padded
// or not) of exactly 32 bytes. The error never quotes the value.
func ParseKey(s auth.Secret) ([]byte, error) {
	v := strings.TrimSpace(s.Reveal())
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("redis token store: key is %d bytes, want %d", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("redis token store: key is not base64")
}

// New returns a Store for opts. It does not connect: the first call does,
// and every call reconnects as needed, so a Redis that is down at start is
// not an error here (see Ping).
func New(opts Options) (*Store, error) {
	if len(opts.Key) != KeySize {
		return nil, fmt.Errorf("redis token store: key is %d bytes, want %d", len(opts.Key), KeySize)
	}
	ro, err := redis.ParseURL(opts.URL)
	if err != nil {
		// A *url.Error quotes the URL, password included: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redis token store: bad url: %w", err)
	}
	if ro.DialTimeout == 0 {
		ro.DialTimeout = defaultDialTimeout
	}
	if ro.ReadTimeout == 0 {
		ro.ReadTimeout = defaultIOTimeout
	}
	if ro.WriteTimeout == 0 {
		ro.WriteTimeout = defaultIOTimeout
	}
	if ro.MaxRetries == 0 {
		ro.MaxRetries = 1
	}
	if ro.DialerRetries == 0 {
		ro.DialerRetries = 1
	}
	ro.ContextTimeoutEnabled = true
	ro.DisableIdentity = true
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if ro.TLSConfig != nil {
		ro.TLSConfig.MinVersion = tls.VersionTLS12
		if opts.RootCAs != nil {
			ro.TLSConfig.RootCAs = opts.RootCAs
		}
	}
	block, err := aes.NewCipher(opts.Key)
	if err != nil {
		return nil, fmt.Errorf("redis token store: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("redis token store: %w", err)
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Store{
		rdb:    redis.NewClient(ro),
		aead:   aead,
		prefix: prefix,
		log:    logger,
		owner:  randomHex(8),
	}, nil
}

// Close closes the connections. Watchers end when their context does;
// Close waits for them and for lease keep-alives, so cancel those contexts
// and release leases first.
func (s *Store) Close() error {
	s.wg.Wait()
	if err := s.rdb.Close(); err != nil {
		return fmt.Errorf("redis token store: close: %w", err)
	}
	return nil
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis token store: %w", err)
	}
	return nil
}

// TokenKey, LeaseKey, FenceKey and Channel name the Redis keys and the
// pub/sub channel for an account.
func (s *Store) TokenKey(account string) string { return s.prefix + "token:" + account }

// LeaseKey is the Redis key of account's lease.
func (s *Store) LeaseKey(account string) string { return s.prefix + "lease:" + account }

// FenceKey is the Redis key of account's fencing counter.
func (s *Store) FenceKey(account string) string { return s.prefix + "fence:" + account }

// Channel is the pub/sub channel a save of account's token is announced on.
func (s *Store) Channel(account string) string { return s.prefix + "token:" + account }

// Scripts. Each runs atomically in Redis.
var (
	// saveScript: KEYS token, fence; ARGV value, channel, message.
	// A plain save supersedes every lease granted so far.
	saveScript = redis.NewScript(`
redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1`)
	// saveFencedScript: KEYS token, fence; ARGV value, channel, message,
	// fence. Stores only if no lease (or plain save) came after fence.
	saveFencedScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[4] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1`)
	// acquireScript: KEYS lease, fence; ARGV value, ttl ms. Returns the
	// new fence, or 0 when the lease is held.
	acquireScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return 0`)
	// extendScript: KEYS lease; ARGV value, ttl ms. 1 while still ours.
	extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)
	// releaseScript: KEYS lease; ARGV value. Deletes only our own lease.
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)
)

// Load returns key's token, or an error wrapping auth.ErrNotFound.
func (s *Store) Load(ctx context.Context, key string) (*auth.Token, error) {
	raw, err := s.rdb.Get(ctx, s.TokenKey(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redis token store: account %q: %w", key, auth.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("redis token store: account %q: load: %w", key, err)
	}
	t, err := s.open(key, raw)
	if err != nil {
		return nil, fmt.Errorf("redis token store: account %q: %w", key, err)
	}
	return t, nil
}

// Save stores t under key unconditionally (an interactive login, a
// migration) and announces it. It supersedes any lease held now: that
// holder's SaveFenced is refused.
func (s *Store) Save(ctx context.Context, key string, t *auth.Token) error {
	val, err := s.seal(key, t)
	if err != nil {
		return fmt.Errorf("redis token store: account %q: %w", key, err)
	}
	err = saveScript.Run(ctx, s.rdb, []string{s.TokenKey(key), s.FenceKey(key)}, val, s.Channel(key), savedMessage).Err()
	if err != nil {
		return fmt.Errorf("redis token store: account %q: save: %w", key, err)
	}
	return nil
}

// SaveFenced stores t under key only if the lease with this fence has not
// been superseded (no lease was granted, and no plain Save made, since);
// otherwise it stores nothing and returns an error wrapping
// auth.ErrLeaseLost. A lease that merely expired with nobody taking over is
// not superseded: its holder's token is still the newest.
func (s *Store) SaveFenced(ctx context.Context, key string, t *auth.Token, fence int64) error {
	val, err := s.seal(key, t)
	if err != nil {
		return fmt.Errorf("redis token store: account %q: %w", key, err)
	}
	ok, err := saveFencedScript.Run(ctx, s.rdb, []string{s.TokenKey(key), s.FenceKey(key)},
		val, s.Channel(key), savedMessage, strconv.FormatInt(fence, 10)).Int64()
	if err != nil {
		return fmt.Errorf("redis token store: account %q: save: %w", key, err)
	}
	if ok != 1 {
		return fmt.Errorf("redis token store: account %q: save with fence %d refused: %w", key, fence, auth.ErrLeaseLost)
	}
	return nil
}

// Delete removes key's token; a missing one is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.rdb.Del(ctx, s.TokenKey(key)).Err(); err != nil {
		return fmt.Errorf("redis token store: account %q: delete: %w", key, err)
	}
	return nil
}

// aad binds a stored value to its account and format version.
func aad(account string) []byte {
	return append([]byte{recordVersion}, account...)
}

// seal encrypts t for account: version byte, nonce, ciphertext.
func (s *Store) seal(account string, t *auth.Token) ([]byte, error) {
	if t == nil {
		return nil, errors.New("nil token")
	}
	r := auth.RecordOf(t)
	plain, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode token: %w", err)
	}
	ns := s.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plain)+s.aead.Overhead())
	out[0] = recordVersion
	if _, err := rand.Read(out[1 : 1+ns]); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	out = s.aead.Seal(out, out[1:1+ns], plain, aad(account))
	clear(plain)
	return out, nil
}

// open decrypts a stored value for account.
func (s *Store) open(account string, raw []byte) (*auth.Token, error) {
	ns := s.aead.NonceSize()
	switch {
	case len(raw) > maxRecord:
		return nil, fmt.Errorf("stored value is larger than %d bytes", maxRecord)
	case len(raw) < 1+ns+s.aead.Overhead():
		return nil, errors.New("stored value is too short to be a token")
	case raw[0] != recordVersion:
		return nil, fmt.Errorf("stored value has unknown format %d", raw[0])
	}
	plain, err := s.aead.Open(nil, raw[1:1+ns], raw[1+ns:], aad(account))
	if err != nil {
		return nil, errors.New("cannot decrypt the stored token: is [store] key the same for every authproxy sharing this Redis?")
	}
	defer clear(plain)
	var r auth.TokenRecord
	if err := json.Unmarshal(plain, &r); err != nil {
		return nil, errors.New("stored token is not valid JSON")
	}
	t, err := r.Token()
	if err != nil {
		return nil, fmt.Errorf("stored token: %w", err)
	}
	return t, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// sleepCtx waits d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// RouteClientLogs sends go-redis's own log lines (failed dials, pub/sub
// reconnects), which otherwise go to stderr unstructured, to logger at
// debug level: the Cache reports the store's health itself. go-redis has
// one logger per process, so this is for main to call once.
func RouteClientLogs(logger *slog.Logger) {
	redis.SetLogger(clientLogger{logger})
}

type clientLogger struct{ log *slog.Logger }

func (l clientLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}

// IsRefused reports whether err (from Ping, say) means Redis or its TLS
// certificate refused this configuration (a wrong password or user, an
// untrusted certificate) rather than that Redis could not be reached.
func IsRefused(err error) bool {
	var (
		re  redis.Error
		ua  x509.UnknownAuthorityError
		ci  x509.CertificateInvalidError
		he  x509.HostnameError
		rhe tls.RecordHeaderError
	)
	return errors.As(err, &re) || errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &he) || errors.As(err, &rhe)
}
