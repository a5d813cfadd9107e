namespace SecureChannels.Protocol.Noise;

/// <summary>
/// A sliding window of accepted 64-bit counters (the bitmap ring of RFC 6479, as WireGuard uses it): a
/// counter is accepted once, and only while it is no more than <see cref="WindowSize"/> behind the highest
/// accepted so far. Checking and accepting are separate so a message is only marked after it authenticated;
/// otherwise a forged message could burn a counter the genuine one needs. Not thread-safe.
/// </summary>
public sealed class ReplayWindow
{
    /// <summary>
    /// How far behind the newest counter an older one is still accepted: 8128, WireGuard's value. Reordering
    /// deeper than this on one path is very unlikely, and the ring is only 1 KiB.
    /// </summary>
    public const int WindowSize = (RingBlocks - 1) * BitsPerBlock;

    private const int BitsPerBlock = 64;
    private const int RingBlocks = 128;
    private readonly ulong[] _ring = new ulong[RingBlocks];
    private ulong _newest;
    private bool _any;

    /// <summary>True when <paramref name="counter"/> was not seen and is not too old.</summary>
    public bool CanAccept(ulong counter)
    {
        if (!_any || counter > _newest)
        {
            return true;
        }

        if (_newest - counter >= WindowSize)
        {
            return false;
        }

        return (_ring[BlockOf(counter)] & BitOf(counter)) == 0;
    }

    /// <summary>Marks <paramref name="counter"/> as seen; returns false (and changes nothing) when <see cref="CanAccept"/> would.</summary>
    public bool Accept(ulong counter)
    {
        if (!CanAccept(counter))
        {
            return false;
        }

        if (!_any || counter > _newest)
        {
            // Clear the blocks the window slides over, at most the whole ring.
            var from = _any ? (_newest / BitsPerBlock) + 1 : 0;
            var to = counter / BitsPerBlock;
            for (var block = from; block <= to && block - from < RingBlocks; block++)
            {
                _ring[block % RingBlocks] = 0;
            }

            _newest = counter;
            _any = true;
        }

        _ring[BlockOf(counter)] |= BitOf(counter);
        return true;
    }

    private static int BlockOf(ulong counter) => (int)(counter / BitsPerBlock % RingBlocks);

    private static ulong BitOf(ulong counter) => 1UL << (int)(counter % BitsPerBlock);
}
