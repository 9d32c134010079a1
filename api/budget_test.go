package api

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDecodeBudget(t *testing.T) {
	ctx := context.Background()
	t.Run("takes what fits and gives it back", func(t *testing.T) {
		b := newDecodeBudget(100, 10*time.Millisecond)
		c := b.claim(ctx)
		require.NoError(t, c.reserve(60))
		require.NoError(t, c.reserve(40))
		require.EqualValues(t, 100, b.inUse())
		c.release()
		require.EqualValues(t, 0, b.inUse())
	})
	t.Run("refuses after waiting when others hold it", func(t *testing.T) {
		b := newDecodeBudget(100, 20*time.Millisecond)
		other := b.claim(ctx)
		require.NoError(t, other.reserve(90))
		c := b.claim(ctx)
		start := time.Now()
		err := c.reserve(20)
		var be *errBudget
		require.True(t, errors.As(err, &be), "%v", err)
		require.False(t, be.tooBig)
		require.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond)
		require.EqualValues(t, 90, b.inUse(), "a refused request holds nothing")
	})
	t.Run("a waiting request gets bytes when they are released", func(t *testing.T) {
		b := newDecodeBudget(100, 5*time.Second)
		other := b.claim(ctx)
		require.NoError(t, other.reserve(90))
		go func() { time.Sleep(20 * time.Millisecond); other.release() }()
		c := b.claim(ctx)
		require.NoError(t, c.reserve(50))
		c.release()
	})
	t.Run("a request larger than the whole budget is refused at once", func(t *testing.T) {
		b := newDecodeBudget(100, 5*time.Second)
		c := b.claim(ctx)
		require.NoError(t, c.reserve(60))
		var be *errBudget
		require.True(t, errors.As(c.reserve(50), &be))
		require.True(t, be.tooBig)
	})
	t.Run("prepaid bytes are spent before new ones are taken", func(t *testing.T) {
		b := newDecodeBudget(100, 10*time.Millisecond)
		c := b.claim(ctx)
		require.NoError(t, c.prepay(70))
		require.NoError(t, c.reserve(30))
		require.NoError(t, c.reserve(40))
		require.EqualValues(t, 70, b.inUse())
		require.NoError(t, c.reserve(30), "the rest comes from the budget")
		require.EqualValues(t, 100, b.inUse())
		c.release()
		require.EqualValues(t, 0, b.inUse())
	})
	t.Run("a cancelled request stops waiting", func(t *testing.T) {
		b := newDecodeBudget(100, 5*time.Second)
		require.NoError(t, b.claim(ctx).reserve(100))
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		require.ErrorIs(t, b.claim(cctx).reserve(1), context.Canceled)
	})
}
