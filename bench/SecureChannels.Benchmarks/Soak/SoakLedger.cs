using System.Collections.Concurrent;
using System.Diagnostics;
using SecureChannels.Protocol.Channel;

using static SecureChannels.Benchmarks.BenchText;

namespace SecureChannels.Benchmarks.Soak;

/// <summary>
/// The account of every message: each channel is a <see cref="SoakSession"/> with one <see cref="Direction"/> per side,
/// where the sender marks each numbered message's outcome and the receiver marks it seen. Once both sides are done, a
/// session is settled into <see cref="SoakTotals"/> and forgotten, so the ledger's own memory stays flat over a long run.
/// </summary>
internal sealed class SoakLedger
{
    // The acceptor learns the session from the first message it reads; a session whose opener is done and whose
    // acceptor never showed up is settled this long after, when nothing of it can still be in flight.
    private static readonly TimeSpan AcceptorGrace = TimeSpan.FromSeconds(15);

    private readonly ConcurrentDictionary<long, SoakSession> _open = new();
    private const int MaxDescribed = 20;
    private readonly ConcurrentDictionary<string, long> _unexpected = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _lost = new();
    private long _nextId;

    public SoakTotals Totals { get; } = new();

    public LatencyHistogram OneWayLatency { get; } = new();

    public LatencyHistogram RoundTrip { get; } = new();

    /// <summary>Exceptions the client's documentation does not name, by where, type and message (the first line of the stack with it).</summary>
    public IReadOnlyDictionary<string, long> UnexpectedExceptions => _unexpected;

    /// <summary>The first lost messages, described: which side, which number, how each end saw the channel end.</summary>
    public IReadOnlyCollection<string> LostMessages => _lost;

    /// <summary>Counts <paramref name="e"/> as unexpected: the run fails, and the report describes it.</summary>
    public void Unexpected(string where, Exception e)
    {
        SoakTotals.Add(ref Totals.Unexpected);
        var origin = e.StackTrace?.Split('\n', StringSplitOptions.TrimEntries).FirstOrDefault() ?? "";
        _unexpected.AddOrUpdate($"{where}: {e.GetType().Name}: {e.Message} ({origin})", 1, (_, n) => n + 1);
    }

    public SoakSession Begin(int maxMessages)
    {
        var session = new SoakSession(Interlocked.Increment(ref _nextId), maxMessages);
        _open[session.Id] = session;
        return session;
    }

    /// <summary>The session a message names, for the acceptor; null (and counted) when it was settled already.</summary>
    public SoakSession? Attach(long id)
    {
        if (_open.TryGetValue(id, out var session) && session.TryAttach())
        {
            return session;
        }

        SoakTotals.Add(ref Totals.LateAttaches);
        return null;
    }

    /// <summary>Settles every session both of whose sides are done (or, with <paramref name="all"/>, every session: the run is over).</summary>
    public void Sweep(bool all)
    {
        var now = Stopwatch.GetTimestamp();
        foreach (var (id, session) in _open)
        {
            if (session.TrySettle(all ? null : now, AcceptorGrace) && _open.TryRemove(id, out _))
            {
                Settle(session);
            }
        }
    }

    private void Settle(SoakSession session)
    {
        Account(session.FromOpener, session.OpenerEnd, session.OpenerAcknowledged, session.AcceptorEnd, session.AcceptorAttached, sender: true);
        Account(session.FromAcceptor, session.AcceptorEnd, session.AcceptorAcknowledged, session.OpenerEnd, receiverAttached: true, sender: false);
    }

    private void Describe(string lost)
    {
        if (_lost.Count < MaxDescribed)
        {
            _lost.Enqueue(lost);
        }
    }

    private void Account(Direction direction, ChannelCloseInfo? senderEnd, long acknowledged, ChannelCloseInfo? receiverEnd, bool receiverAttached, bool sender)
    {
        // What the receiver's channel acknowledged (docs/protocol.md §8.3) it hands to the application; the application
        // drops it only by ending the channel itself: disposing it (GOING_AWAY of its own making) or dying with its
        // agent. When the receiver never read a first message, its end is known only from the sender's side.
        var receiverDropped = receiverAttached
            ? receiverEnd is { Code: ChannelErrorCode.GoingAway, FromPeer: false }
            : senderEnd is { Code: ChannelErrorCode.GoingAway, FromPeer: true };
        var t = Totals;
        for (var seq = 1; seq <= direction.Count; seq++)
        {
            var outcome = direction.Outcome(seq);
            SoakTotals.Add(ref t.Sent);
            var request = (outcome & Outcome.Request) != 0;
            if (request)
            {
                SoakTotals.Add(ref t.Requests);
            }

            // A one-way message the sender's channel took is reported failed when it was past MessagesAcknowledged
            // as the channel ended: the sender can tell it may not have arrived.
            var unacknowledged = (outcome & Outcome.Sent) != 0 && direction.Number(seq) > acknowledged;
            var seen = (outcome & Outcome.Seen) != 0;
            var reported = (outcome & Outcome.Failed) != 0 || unacknowledged;
            if (seen && reported)
            {
                SoakTotals.Add(ref t.DeliveredAndReported);
            }
            else if (seen)
            {
                SoakTotals.Add(ref t.Delivered);
            }
            else if (reported)
            {
                SoakTotals.Add(ref t.ReportedFailed);
                if (unacknowledged)
                {
                    SoakTotals.Add(ref t.Unacknowledged);
                }
            }
            else if ((outcome & Outcome.Sent) != 0 && receiverDropped)
            {
                SoakTotals.Add(ref t.DroppedByReceiver);
            }
            else
            {
                SoakTotals.Add(ref t.Lost);
                var why = (outcome & Outcome.Answered) != 0 ? "answered, never read" : (outcome & Outcome.Sent) != 0 ? Invariant($"acknowledged (channel message {direction.Number(seq)}, {acknowledged} acknowledged), never read") : "no outcome recorded";
                Describe($"{why}: {(sender ? "opener" : "acceptor")}'s message {seq} of {direction.Count} (highest read {direction.HighestSeen}, {(request ? "request" : "one-way")}); sender's end {senderEnd?.ToString() ?? "none"}, receiver's end {(receiverAttached ? receiverEnd?.ToString() ?? "none" : "never attached")}");
            }
        }
    }
}

/// <summary>What happened to one numbered message (flags: the sender's outcome, and whether the receiver saw it).</summary>
[Flags]
internal enum Outcome
{
    None = 0,

    /// <summary>A one-way message the channel took (SendAsync returned).</summary>
    Sent = 1,

    /// <summary>A request whose response came back.</summary>
    Answered = 2,

    /// <summary>The sender was told it failed: a typed exception from SendAsync or RequestAsync.</summary>
    Failed = 4,

    /// <summary>The receiver read it.</summary>
    Seen = 8,

    Request = 16,
}

/// <summary>One side's numbered messages in one channel: 1..<see cref="Count"/>, at most the session's maximum.</summary>
internal sealed class Direction(int maxMessages)
{
    private readonly int[] _outcomes = new int[maxMessages + 1];
    private readonly long[] _numbers = new long[maxMessages + 1];
    private int _count;
    private int _highestSeen;

    public int Count => Volatile.Read(ref _count);

    public int HighestSeen => Volatile.Read(ref _highestSeen);

    /// <summary>The sender's next number, or 0 when the side has sent its maximum.</summary>
    public int Next()
    {
        var seq = Volatile.Read(ref _count) + 1;
        if (seq >= _outcomes.Length)
        {
            return 0;
        }

        Volatile.Write(ref _count, seq);
        return seq;
    }

    public void Mark(int seq, Outcome outcome) => Interlocked.Or(ref _outcomes[seq], (int)outcome);

    /// <summary>The sender's channel numbered this one-way message <paramref name="number"/> (its MessagesSent right after it).</summary>
    public void SetNumber(int seq, long number) => Volatile.Write(ref _numbers[seq], number);

    public long Number(int seq) => Volatile.Read(ref _numbers[seq]);

    public Outcome Outcome(int seq) => (Outcome)Volatile.Read(ref _outcomes[seq]);

    /// <summary>The receiver's side (one reader per direction): marks <paramref name="seq"/> seen and says how it came.</summary>
    public Arrival See(int seq)
    {
        if (seq < 1 || seq >= _outcomes.Length)
        {
            return Arrival.Foreign;
        }

        var before = (Outcome)Interlocked.Or(ref _outcomes[seq], (int)Soak.Outcome.Seen);
        if ((before & Soak.Outcome.Seen) != 0)
        {
            return Arrival.Duplicate;
        }

        if (seq < _highestSeen)
        {
            return Arrival.OutOfOrder;
        }

        _highestSeen = seq;
        return Arrival.InOrder;
    }
}

internal enum Arrival
{
    InOrder,
    Duplicate,
    OutOfOrder,

    /// <summary>A number the sender could not have used: the payload is not what was sent.</summary>
    Foreign,
}

/// <summary>One channel: the opener's and the acceptor's messages, and how each end saw the channel end.</summary>
internal sealed class SoakSession(long id, int maxMessages)
{
    private readonly Lock _lock = new();
    private bool _openerDone;
    private long _openerDoneAt;
    private int _acceptor; // 0 none, 1 attached, 2 done
    private bool _settled;

    public long Id { get; } = id;

    public Direction FromOpener { get; } = new(maxMessages);

    public Direction FromAcceptor { get; } = new(maxMessages);

    public ChannelCloseInfo? OpenerEnd { get; private set; }

    public ChannelCloseInfo? AcceptorEnd { get; private set; }

    public bool AcceptorAttached { get; private set; }

    public bool TryAttach()
    {
        lock (_lock)
        {
            if (_settled || _acceptor != 0)
            {
                return false;
            }

            _acceptor = 1;
            AcceptorAttached = true;
            return true;
        }
    }

    /// <summary>How many of the opener's channel messages the acceptor acknowledged, as the channel ended.</summary>
    public long OpenerAcknowledged { get; private set; }

    public long AcceptorAcknowledged { get; private set; }

    public void OpenerDone(ChannelCloseInfo? end, long acknowledged)
    {
        lock (_lock)
        {
            OpenerEnd = end;
            OpenerAcknowledged = acknowledged;
            _openerDone = true;
            _openerDoneAt = Stopwatch.GetTimestamp();
        }
    }

    public void AcceptorDone(ChannelCloseInfo? end, long acknowledged)
    {
        lock (_lock)
        {
            AcceptorEnd = end;
            AcceptorAcknowledged = acknowledged;
            _acceptor = 2;
        }
    }

    /// <summary>Whether the session can be settled now (<paramref name="now"/> null: at the end of the run, whatever its state).</summary>
    public bool TrySettle(long? now, TimeSpan grace)
    {
        lock (_lock)
        {
            var ready = now is not { } at
                || (_openerDone && (_acceptor == 2 || (_acceptor == 0 && Stopwatch.GetElapsedTime(_openerDoneAt, at) > grace)));
            _settled |= ready;
            return ready;
        }
    }
}

/// <summary>The run's counters, updated from every agent's tasks at once.</summary>
internal sealed class SoakTotals
{
    public long Sent;
    public long Requests;
    public long Delivered;
    public long DeliveredAndReported;
    public long ReportedFailed;
    public long Unacknowledged;
    public long DroppedByReceiver;
    public long Lost;
    public long Duplicates;
    public long OutOfOrder;
    public long Foreign;
    public long LateAttaches;
    public long Unexpected;
    public long ChannelsOpened;
    public long OpenFailures;
    public long ChannelsAccepted;
    public long GracefulCloses;
    public long Disposals;
    public long RelayKills;
    public long AgentKills;
    public long HopsEstablished;

    public static void Add(ref long counter, long amount = 1) => Interlocked.Add(ref counter, amount);
}

/// <summary>Latencies in logarithmic buckets (2 % wide), so millions of samples take a fixed few kilobytes.</summary>
internal sealed class LatencyHistogram
{
    private const double Growth = 1.02;
    private const double SmallestMicroseconds = 1;
    private static readonly double LogGrowth = Math.Log(Growth);
    private readonly long[] _buckets = new long[1100];
    private long _count;
    private long _maxTicks;

    public long Count => Interlocked.Read(ref _count);

    public void Record(TimeSpan elapsed)
    {
        var microseconds = Math.Max(elapsed.TotalMicroseconds, SmallestMicroseconds);
        var bucket = Math.Min((int)(Math.Log(microseconds / SmallestMicroseconds) / LogGrowth), _buckets.Length - 1);
        Interlocked.Increment(ref _buckets[bucket]);
        Interlocked.Increment(ref _count);
        var ticks = elapsed.Ticks;
        long max;
        while (ticks > (max = Interlocked.Read(ref _maxTicks)) && Interlocked.CompareExchange(ref _maxTicks, ticks, max) != max)
        {
        }
    }

    /// <summary>The upper edge of the bucket holding the <paramref name="quantile"/> (nearest rank); zero with no sample.</summary>
    public TimeSpan Quantile(double quantile)
    {
        var count = Count;
        if (count == 0)
        {
            return TimeSpan.Zero;
        }

        var rank = Math.Max(1, (long)Math.Ceiling(quantile * count));
        long seen = 0;
        for (var i = 0; i < _buckets.Length; i++)
        {
            seen += Interlocked.Read(ref _buckets[i]);
            if (seen >= rank)
            {
                return TimeSpan.FromMicroseconds(SmallestMicroseconds * Math.Pow(Growth, i + 1));
            }
        }

        return Max;
    }

    public TimeSpan Max => TimeSpan.FromTicks(Interlocked.Read(ref _maxTicks));
}
