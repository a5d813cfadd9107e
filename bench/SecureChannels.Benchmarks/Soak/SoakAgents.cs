using System.Buffers.Binary;
using System.Diagnostics;
using SecureChannels.Client;
using SecureChannels.Client.Messaging;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Policy;

namespace SecureChannels.Benchmarks.Soak;

/// <summary>
/// One agent of the soak across its lives: the identity and credential it keeps, the client of its current life, and
/// the work it does in that life (an opener's channel loop or an acceptor's accept loop). A kill disposes the client
/// in the middle of whatever it does; a restart comes back with the same identity.
/// </summary>
internal sealed class SoakAgent(int index, AgentIdentity identity, CredentialChain credential, Func<SoakAgent, AgentClient, CancellationToken, Task> work)
{
    private readonly Lock _lock = new();
    private AgentClient? _client;
    private CancellationTokenSource? _life;
    private Task? _work;

    public int Index { get; } = index;

    public AgentIdentity Identity { get; } = identity;

    /// <summary>Hops this agent established in its past lives (its current life's are on the client).</summary>
    public int PastHops { get; private set; }

    public int Hops
    {
        get
        {
            lock (_lock)
            {
                return PastHops + (_client?.HopsEstablished ?? 0);
            }
        }
    }

    /// <summary>Channels this agent accepted, all lives together: seeds each accepted channel's choices.</summary>
    public int Accepted;

    /// <summary>Lives started so far: seeds each life's choices.</summary>
    public int Lives { get; private set; }

    /// <summary>Starts a life: a new client on <paramref name="relay"/>, its work running. A relay that is down is retried by the client in the background.</summary>
    public async Task StartAsync(RelayEndpoint relay, TrustAnchors anchors, CancellationToken cancellationToken)
    {
        var client = new AgentClient(new AgentClientOptions
        {
            Identity = Identity,
            Anchors = anchors,
            Credentials = [credential],
            Policy = AccessPolicy.Parse("peer.chain_length >= 1"),
            Relays = [relay],
            FirstReconnectBackoff = TimeSpan.FromMilliseconds(250),
            MaxReconnectBackoff = TimeSpan.FromSeconds(4),
            DefaultRequestTimeout = SoakTraffic.RequestTimeout,
            TimeProvider = TimeProvider.System,
        });
        var life = new CancellationTokenSource();
        Lives++;
        lock (_lock)
        {
            _client = client;
            _life = life;
        }

        try
        {
            await client.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or SecureChannelException or TimeoutException)
        {
            // The relay is down (a kill overlapped): the client keeps trying, the work waits for the hop.
        }

        lock (_lock)
        {
            _work = Task.Run(() => work(this, client, life.Token), CancellationToken.None);
        }
    }

    /// <summary>Ends this life abruptly: the work is told to stop and the client is disposed under it at once.</summary>
    public async Task KillAsync()
    {
        AgentClient? client;
        CancellationTokenSource? life;
        Task? running;
        lock (_lock)
        {
            (client, life, running) = (_client, _life, _work);
            (_client, _life, _work) = (null, null, null);
            PastHops += client?.HopsEstablished ?? 0;
        }

        if (client is null)
        {
            return;
        }

        await life!.CancelAsync().ConfigureAwait(false);
        await client.DisposeAsync().ConfigureAwait(false);
        if (running is not null)
        {
            await running.ConfigureAwait(false);
        }

        life.Dispose();
    }

    /// <summary>The current life's work (an opener's loop ends once traffic stops).</summary>
    public Task Work
    {
        get
        {
            lock (_lock)
            {
                return _work ?? Task.CompletedTask;
            }
        }
    }
}

/// <summary>
/// What the agents do: openers open channels to their partner, both sides exchange numbered one-way messages and
/// requests, the opener ends the channel (a graceful close, or a disposal), and opens the next. Every message's
/// outcome goes to the <see cref="SoakLedger"/>.
/// </summary>
/// <remarks>
/// A one-way message is <c>session (8) | seq (4) | sent at (8, Stopwatch ticks) | peer's count (4) | padding</c>;
/// a request is the MessagePack array <c>[session, seq, sent at]</c>, answered with <c>[seq]</c>.
/// </remarks>
internal sealed class SoakTraffic(SoakOptions options, SoakLedger ledger, CancellationToken trafficStopped)
{
    /// <summary>How long a request waits: far past any latency the soak sees, so a time-out means a lost message, not a slow one.</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);

    // How long an open may wait for a hop (the relay may be down) or for its partner (it may be dead).
    private static readonly TimeSpan OpenTimeout = TimeSpan.FromSeconds(15);

    // How long the opener waits for the partner's messages, and for its close to be answered.
    private static readonly TimeSpan SessionGuard = TimeSpan.FromSeconds(30);

    private const int Header = 24;
    private const int MaxPadding = 256;

    private SoakTotals Totals => ledger.Totals;

    /// <summary>The opener's work in one life: channel after channel to <paramref name="partner"/> until traffic stops.</summary>
    public async Task OpenLoopAsync(SoakAgent self, AgentClient client, string partner, CancellationToken life)
    {
        var random = new Random(HashCode.Combine(options.Seed, self.Index, self.Lives));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(life, trafficStopped);
        while (!stop.IsCancellationRequested)
        {
            var session = ledger.Begin(options.MaxMessagesPerChannel);
            (ChannelCloseInfo End, long Acknowledged)? end = null;
            try
            {
                AgentChannel channel;
                try
                {
                    using var opening = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
                    opening.CancelAfter(OpenTimeout);
                    channel = await client.OpenChannelAsync(partner, opening.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is RelayException or SecureChannelException or OperationCanceledException or ObjectDisposedException)
                {
                    SoakTotals.Add(ref Totals.OpenFailures);
                    await PauseAsync(random, stop.Token).ConfigureAwait(false);
                    continue;
                }

                SoakTotals.Add(ref Totals.ChannelsOpened);
                end = await RunOpenedAsync(channel, session, random, stop.Token, life).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Whatever the client's documentation does not name is a finding: counted, described, and the run goes on.
                ledger.Unexpected("opener", e);
                await PauseAsync(random, stop.Token).ConfigureAwait(false);
            }
            finally
            {
                session.OpenerDone(end?.End, end?.Acknowledged ?? 0);
            }
        }
    }

    /// <summary>The acceptor's work in one life: every channel its partner opens, served until it ends.</summary>
    public async Task AcceptLoopAsync(SoakAgent self, AgentClient client, CancellationToken life)
    {
        var serving = new List<Task>();
        while (true)
        {
            AgentChannel channel;
            try
            {
                channel = await client.AcceptChannelAsync(life).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                break;
            }

            SoakTotals.Add(ref Totals.ChannelsAccepted);
            var random = new Random(HashCode.Combine(options.Seed, self.Index, Interlocked.Increment(ref self.Accepted)));
            serving.RemoveAll(t => t.IsCompleted);
            serving.Add(ServeOrReportAsync(channel, random, life));
        }

        await Task.WhenAll(serving).ConfigureAwait(false);
    }

    private async Task<(ChannelCloseInfo End, long Acknowledged)> RunOpenedAsync(AgentChannel channel, SoakSession session, Random random, CancellationToken stop, CancellationToken life)
    {
        using var ended = Ended(channel, stop);
        using var sendLock = new SemaphoreSlim(1, 1);
        var own = random.Next(1, options.MaxMessagesPerChannel + 1);
        var theirs = random.Next(1, options.MaxMessagesPerChannel + 1);
        var allIn = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var receiving = ReceiveLoopAsync(channel, sendLock, id => id == session.Id ? session.FromAcceptor : null, seen => { if (seen >= theirs) { allIn.TrySetResult(); } });
        await SendLoopAsync(channel, sendLock, session, session.FromOpener, own, theirs, random, ended.Token).ConfigureAwait(false);
        try
        {
            await allIn.Task.WaitAsync(SessionGuard, ended.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException)
        {
            // The channel ended, the agent is dying, or traffic stopped: close with what came.
        }

        // A dying agent's client disposes the channel under this loop; otherwise the opener ends it, also when traffic stops.
        var disposing = random.NextDouble() < options.DisposeShare;
        if (disposing && !life.IsCancellationRequested)
        {
            // Abrupt: what the partner sent and this side has not read yet is dropped with the channel.
            SoakTotals.Add(ref Totals.Disposals);
            await channel.DisposeAsync().ConfigureAwait(false);
        }
        else if (!life.IsCancellationRequested)
        {
            try
            {
                using var closing = CancellationTokenSource.CreateLinkedTokenSource(life);
                closing.CancelAfter(SessionGuard);
                await channel.CloseAsync(closing.Token).ConfigureAwait(false);
                SoakTotals.Add(ref Totals.GracefulCloses);
            }
            catch (Exception e) when (e is SecureChannelException or OperationCanceledException or ObjectDisposedException)
            {
                // Ended otherwise: the channel's completion says how.
            }
        }

        // After a graceful close, everything the partner sent before its CLOSE is read before the channel is disposed:
        // disposing first would drop what still waits in the receive queue, and the soak would blame the channel.
        if (!channel.Completion.IsCompleted)
        {
            // The close was not answered in time: the channel is ended here, the reader with it.
            await channel.DisposeAsync().ConfigureAwait(false);
        }

        await receiving.ConfigureAwait(false);
        await channel.DisposeAsync().ConfigureAwait(false);
        return (await channel.Completion.ConfigureAwait(false), channel.Channel.MessagesAcknowledged);
    }

    private async Task ServeOrReportAsync(AgentChannel channel, Random random, CancellationToken life)
    {
        try
        {
            await ServeAsync(channel, random, life).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            ledger.Unexpected("acceptor", e);
        }
    }

    private async Task ServeAsync(AgentChannel channel, Random random, CancellationToken life)
    {
        SoakSession? session = null;
        using var sendLock = new SemaphoreSlim(1, 1);
        var attached = new TaskCompletionSource<(SoakSession? Session, int Count)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var receiving = ReceiveLoopAsync(
            channel,
            sendLock,
            id =>
            {
                if (session is null && !attached.Task.IsCompleted)
                {
                    session = ledger.Attach(id);
                }

                return session?.Id == id ? session.FromOpener : null;
            },
            onHello: count => attached.TrySetResult((session, count)));
        using (var ended = Ended(channel, life))
        {
            try
            {
                var (found, count) = await attached.Task.WaitAsync(ended.Token).ConfigureAwait(false);
                if (found is not null)
                {
                    await SendLoopAsync(channel, sendLock, found, found.FromAcceptor, count, 0, random, ended.Token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException)
            {
                // The channel ended (or the agent is dying) before the opener's first message: nothing to send.
            }

            // The opener ends the channel; a dying agent's client ends it under this loop.
            await receiving.ConfigureAwait(false);
        }

        var end = await channel.Completion.ConfigureAwait(false);
        await channel.DisposeAsync().ConfigureAwait(false);
        session?.AcceptorDone(end, channel.Channel.MessagesAcknowledged);
    }

    /// <summary>A token cancelled when the channel ends or <paramref name="stop"/> is.</summary>
    private static CancellationTokenSource Ended(AgentChannel channel, CancellationToken stop)
    {
        var ended = CancellationTokenSource.CreateLinkedTokenSource(stop);
        _ = channel.Completion.ContinueWith(static (_, state) =>
        {
            try
            {
                ((CancellationTokenSource)state!).Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The session is over already.
            }
        }, ended, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return ended;
    }

    private async Task SendLoopAsync(AgentChannel channel, SemaphoreSlim sendLock, SoakSession session, Direction direction, int count, int peerCount, Random random, CancellationToken stop)
    {
        var buffer = new byte[Header + MaxPadding];
        for (var i = 0; i < count && !stop.IsCancellationRequested; i++)
        {
            var seq = direction.Next();
            if (seq == 0)
            {
                break;
            }

            // The first message is one-way, so the acceptor learns the session and how much to send from it.
            var request = seq > 1 && random.NextDouble() < options.RequestShare;
            var started = Stopwatch.GetTimestamp();
            bool more;
            if (request)
            {
                direction.Mark(seq, Outcome.Request);
                more = await RequestAsync(channel, session.Id, direction, seq, started).ConfigureAwait(false);
            }
            else
            {
                BinaryPrimitives.WriteInt64LittleEndian(buffer, session.Id);
                BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(8), seq);
                BinaryPrimitives.WriteInt64LittleEndian(buffer.AsSpan(12), started);
                BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(20), peerCount);
                // Under the channel's send lock, so MessagesSent right after the send is this message's number: the
                // receive loop's responses are messages of the same channel.
                await sendLock.WaitAsync(CancellationToken.None).ConfigureAwait(false);
                try
                {
                    await channel.SendAsync(buffer.AsMemory(0, Header + random.Next(MaxPadding + 1)), CancellationToken.None).ConfigureAwait(false);
                    direction.SetNumber(seq, channel.Channel.MessagesSent);
                    direction.Mark(seq, Outcome.Sent);
                    more = true;
                }
                catch (SecureChannelException)
                {
                    direction.Mark(seq, Outcome.Failed);
                    more = false;
                }
                finally
                {
                    sendLock.Release();
                }
            }

            if (!more || !await PauseAsync(random, stop).ConfigureAwait(false))
            {
                break;
            }
        }
    }

    private async Task<bool> RequestAsync(AgentChannel channel, long session, Direction direction, int seq, long started)
    {
        try
        {
            var echo = await channel.RequestAsync<long[], long[]>([session, seq, started], RequestTimeout, CancellationToken.None).ConfigureAwait(false);
            ledger.RoundTrip.Record(Stopwatch.GetElapsedTime(started));
            if (echo is [var answered] && answered == seq)
            {
                direction.Mark(seq, Outcome.Answered);
            }
            else
            {
                SoakTotals.Add(ref Totals.Foreign);
                direction.Mark(seq, Outcome.Failed);
            }

            return true;
        }
        catch (AgentRequestException e)
        {
            direction.Mark(seq, Outcome.Failed);
            return e.Failure is not RequestFailure.ChannelClosed;
        }
        catch (SecureChannelException)
        {
            direction.Mark(seq, Outcome.Failed);
            return false;
        }
    }

    /// <summary>
    /// Reads every message until the channel ends: marks each seen in the direction <paramref name="incoming"/> names for
    /// its session (counting duplicates, messages out of order and foreign ones), answers requests, and reports the first
    /// one-way message's peer count to <paramref name="onHello"/> and the in-order count to <paramref name="onSeen"/>.
    /// </summary>
    private async Task ReceiveLoopAsync(AgentChannel channel, SemaphoreSlim sendLock, Func<long, Direction?> incoming, Action<int>? onSeen = null, Action<int>? onHello = null)
    {
        await Task.Yield();
        var inOrder = 0;
        while (true)
        {
            AgentMessage? message;
            try
            {
                message = await channel.ReceiveAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is SecureChannelException or ObjectDisposedException or OperationCanceledException)
            {
                break;
            }

            if (message is null)
            {
                break;
            }

            using (message)
            {
                long session;
                int seq;
                long sentAt;
                if (message.IsRequest)
                {
                    long[]? probe;
                    try
                    {
                        probe = message.Deserialize<long[]>();
                    }
                    catch (AgentMessageException)
                    {
                        probe = null;
                    }

                    if (probe is not [var s, var q, var at])
                    {
                        SoakTotals.Add(ref Totals.Foreign);
                        continue;
                    }

                    (session, seq, sentAt) = (s, (int)q, at);
                }
                else
                {
                    var payload = message.Payload.Span;
                    if (payload.Length < Header)
                    {
                        SoakTotals.Add(ref Totals.Foreign);
                        continue;
                    }

                    session = BinaryPrimitives.ReadInt64LittleEndian(payload);
                    seq = BinaryPrimitives.ReadInt32LittleEndian(payload[8..]);
                    sentAt = BinaryPrimitives.ReadInt64LittleEndian(payload[12..]);
                    if (seq == 1)
                    {
                        incoming(session);
                        onHello?.Invoke(BinaryPrimitives.ReadInt32LittleEndian(payload[20..]));
                    }

                    ledger.OneWayLatency.Record(Stopwatch.GetElapsedTime(sentAt));
                }

                var arrival = incoming(session)?.See(seq) ?? Arrival.Foreign;
                switch (arrival)
                {
                    case Arrival.Duplicate:
                        SoakTotals.Add(ref Totals.Duplicates);
                        break;
                    case Arrival.OutOfOrder:
                        SoakTotals.Add(ref Totals.OutOfOrder);
                        break;
                    case Arrival.Foreign:
                        SoakTotals.Add(ref Totals.Foreign);
                        break;
                    default:
                        onSeen?.Invoke(++inOrder);
                        break;
                }

                if (message.IsRequest)
                {
                    await sendLock.WaitAsync(CancellationToken.None).ConfigureAwait(false);
                    try
                    {
                        await message.RespondAsync<long[]>([seq]).ConfigureAwait(false);
                    }
                    catch (SecureChannelException)
                    {
                        // The channel ended: the requester hears that instead.
                    }
                    finally
                    {
                        sendLock.Release();
                    }
                }
            }
        }

        // An acceptor whose channel ended before any one-way message from the opener stops waiting for it.
        onHello?.Invoke(0);
    }

    /// <summary>A random pause up to <see cref="SoakOptions.MaxPause"/>; false when <paramref name="stop"/> cut it.</summary>
    private async Task<bool> PauseAsync(Random random, CancellationToken stop)
    {
        try
        {
            await Task.Delay(TimeSpan.FromTicks((long)(random.NextDouble() * options.MaxPause.Ticks)), stop).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
