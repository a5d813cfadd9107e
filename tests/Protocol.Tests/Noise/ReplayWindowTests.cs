using SecureChannels.Protocol.Noise;

namespace SecureChannels.Protocol.Tests.Noise;

/// <summary>The sliding replay window of the stateless transport.</summary>
public sealed class ReplayWindowTests
{
    [Fact]
    public void WindowSizeIsWireGuardsValue()
    {
        Assert.Equal(8128, ReplayWindow.WindowSize);
    }

    [Fact]
    public void FreshWindowAcceptsZero()
    {
        var window = new ReplayWindow();
        Assert.True(window.CanAccept(0));
        Assert.True(window.Accept(0));
        Assert.False(window.CanAccept(0));
    }

    [Fact]
    public void FreshWindowAcceptsAnyFirstCounter()
    {
        var window = new ReplayWindow();
        Assert.True(window.Accept(ulong.MaxValue - 1));
        Assert.False(window.CanAccept(ulong.MaxValue - 1));
        Assert.True(window.CanAccept(ulong.MaxValue - 2));
        Assert.True(window.CanAccept(ulong.MaxValue));
    }

    [Fact]
    public void DuplicateIsRejectedAndChangesNothing()
    {
        var window = new ReplayWindow();
        Assert.True(window.Accept(5));
        Assert.False(window.CanAccept(5));
        Assert.False(window.Accept(5));
        Assert.True(window.CanAccept(4));
        Assert.True(window.CanAccept(6));
    }

    [Fact]
    public void CanAcceptDoesNotMarkTheCounter()
    {
        var window = new ReplayWindow();
        Assert.True(window.CanAccept(3));
        Assert.True(window.CanAccept(3));
        Assert.True(window.Accept(3));
    }

    [Fact]
    public void OutOfOrderCountersWithinTheWindowAreEachAcceptedOnce()
    {
        var window = new ReplayWindow();
        ulong[] order = [100, 3, 99, 0, 50, 64, 63, 65, 1];
        foreach (var counter in order)
        {
            Assert.True(window.Accept(counter), $"first sight of {counter}");
        }

        foreach (var counter in order)
        {
            Assert.False(window.Accept(counter), $"second sight of {counter}");
        }

        // Counters never seen are still accepted.
        ulong[] unseen = [2, 4, 62, 66, 98];
        foreach (var counter in unseen)
        {
            Assert.True(window.CanAccept(counter), $"unseen {counter}");
        }
    }

    [Theory]
    [InlineData(ReplayWindow.WindowSize)]
    [InlineData(ReplayWindow.WindowSize + 5000)]
    [InlineData(1_000_000)]
    public void CounterExactlyWindowSizeBehindIsRejectedAndOneLessIsAccepted(ulong newest)
    {
        var window = new ReplayWindow();
        Assert.True(window.Accept(newest));
        Assert.False(window.CanAccept(newest - ReplayWindow.WindowSize));
        Assert.False(window.Accept(newest - ReplayWindow.WindowSize));
        if (newest > ReplayWindow.WindowSize)
        {
            Assert.False(window.CanAccept(newest - ReplayWindow.WindowSize - 1));
        }

        Assert.False(window.CanAccept(0));
        Assert.True(window.Accept(newest - ReplayWindow.WindowSize + 1));
        Assert.False(window.CanAccept(newest - ReplayWindow.WindowSize + 1));
    }

    [Fact]
    public void EveryCounterOfTheWindowIsTrackedIndividually()
    {
        // Accept every other counter across the whole window, then check each one, both parities.
        var window = new ReplayWindow();
        const ulong newest = 3 * ReplayWindow.WindowSize;
        Assert.True(window.Accept(newest));
        for (var back = 2UL; back < ReplayWindow.WindowSize; back += 2)
        {
            Assert.True(window.Accept(newest - back));
        }

        for (var back = 1UL; back < ReplayWindow.WindowSize; back++)
        {
            Assert.Equal(back % 2 == 1, window.CanAccept(newest - back));
        }
    }

    [Fact]
    public void AdvancingOneRingBlockClearsTheAliasedBlock()
    {
        // The ring has 128 blocks of 64 counters: counter 74 (block 1) and 8266 (block 129) share a ring slot.
        var window = new ReplayWindow();
        Assert.True(window.Accept(74));
        Assert.True(window.Accept(64 * 129 + 20));
        Assert.True(window.CanAccept(64 * 129 + 10));
        Assert.True(window.Accept(64 * 129 + 10));
    }

    [Fact]
    public void AJumpFarAheadClearsTheRingSoOldBitsDoNotAlias()
    {
        var window = new ReplayWindow();
        for (ulong counter = 0; counter < 2 * ReplayWindow.WindowSize; counter++)
        {
            Assert.True(window.Accept(counter));
        }

        const ulong jump = 1_000_000;
        Assert.True(window.Accept(jump));

        // Every counter still in the window, except the newest, is unseen: none may be shadowed by old bits.
        for (var counter = jump - ReplayWindow.WindowSize + 1; counter < jump; counter++)
        {
            Assert.True(window.CanAccept(counter), $"counter {counter} wrongly looks seen");
        }

        Assert.False(window.CanAccept(jump));
    }

    [Fact]
    public void AJumpOfLessThanTheRingClearsOnlyTheBlocksItSlidesOver()
    {
        var window = new ReplayWindow();
        for (ulong counter = 0; counter < 1000; counter++)
        {
            Assert.True(window.Accept(counter));
        }

        Assert.True(window.Accept(5000));

        // Counters accepted before the jump are still within the window and still refused...
        for (ulong counter = 0; counter < 1000; counter++)
        {
            Assert.False(window.CanAccept(counter), $"counter {counter} forgotten");
        }

        // ...and the ones skipped over are accepted.
        for (ulong counter = 1000; counter < 5000; counter++)
        {
            Assert.True(window.CanAccept(counter), $"counter {counter} wrongly looks seen");
        }
    }

    [Fact]
    public void AdvancingWithinTheSameBlockKeepsEarlierBitsOfThatBlock()
    {
        var window = new ReplayWindow();
        Assert.True(window.Accept(128));
        Assert.True(window.Accept(130));
        Assert.True(window.Accept(191));
        Assert.False(window.CanAccept(128));
        Assert.False(window.CanAccept(130));
        Assert.True(window.CanAccept(129));
    }

    [Fact]
    public void CountersNearTheTopOfTheRangeWork()
    {
        var window = new ReplayWindow();
        Assert.True(window.Accept(ulong.MaxValue - 100));
        Assert.True(window.Accept(ulong.MaxValue));
        Assert.False(window.CanAccept(ulong.MaxValue));
        Assert.False(window.CanAccept(ulong.MaxValue - 100));
        Assert.True(window.Accept(ulong.MaxValue - 50));
    }
}
