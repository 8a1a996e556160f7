package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// Pool keeps one Conn per Endpoint.Alias. It is safe for concurrent use: when
// many goroutines ask for the same host at once, one dials and the others wait
// for its result; a failed dial is handed to every waiter and retried by the
// next Get.
type Pool struct {
	d      *Dialer
	mu     sync.Mutex
	conns  map[string]*poolEntry
	closed bool
}

type poolEntry struct {
	ready chan struct{} // closed when conn/err are set
	conn  *Conn
	err   error
}

// NewPool returns an empty pool dialing with d.
func NewPool(d *Dialer) *Pool {
	return &Pool{d: d, conns: make(map[string]*poolEntry)}
}

func poolKey(ep *Endpoint) string {
	if ep.Alias != "" {
		return ep.Alias
	}
	return net.JoinHostPort(ep.HostName, strconv.Itoa(portOr22(ep.Port)))
}

// Get returns the host's connection, dialing it if needed.
func (p *Pool) Get(ctx context.Context, ep *Endpoint) (*Conn, error) {
	key := poolKey(ep)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("connection pool closed")
	}
	if e, ok := p.conns[key]; ok {
		p.mu.Unlock()
		select {
		case <-e.ready:
			return e.conn, e.err
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: waiting for connection: %w", key, ctx.Err())
		}
	}
	e := &poolEntry{ready: make(chan struct{})}
	p.conns[key] = e
	p.mu.Unlock()

	conn, err := p.d.Dial(ctx, ep)
	p.mu.Lock()
	if err == nil && p.closed {
		conn.Close()
		conn, err = nil, errors.New("connection pool closed")
	}
	if err != nil && p.conns[key] == e {
		delete(p.conns, key) // the next Get dials again
	}
	e.conn, e.err = conn, err
	close(e.ready)
	p.mu.Unlock()
	return conn, err
}

// Release closes the host's pooled connection and forgets it, so a command that
// is done with a host holds no connection (and its goroutines) until the end of
// a run across thousands of hosts. A later Get dials again.
func (p *Pool) Release(ep *Endpoint) error {
	key := poolKey(ep)
	p.mu.Lock()
	e, ok := p.conns[key]
	if ok {
		delete(p.conns, key)
	}
	p.mu.Unlock()
	if !ok {
		return nil
	}
	<-e.ready
	if e.conn == nil {
		return nil
	}
	return e.conn.Close()
}

// Close closes every pooled connection.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	entries := p.conns
	p.conns = make(map[string]*poolEntry)
	p.mu.Unlock()
	var errs []error
	for _, e := range entries {
		<-e.ready
		if e.conn != nil {
			if err := e.conn.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
