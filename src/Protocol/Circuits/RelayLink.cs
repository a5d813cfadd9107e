using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using SecureChannels.Protocol.Channel;

namespace SecureChannels.Protocol.Circuits;

/// <summary>
/// The agent's end of a hop to a relay (docs/protocol.md §9): says HELLO, opens circuits to addresses, accepts
/// circuits others open to this agent, and answers keepalive PINGs. One receive loop reads the hop and
/// dispatches its frames; it never waits for an application.
/// </summary>
public sealed partial class RelayLink : IAsyncDisposable
{
    /// <summary>How long a closing GOAWAY may take to leave: a relay that reads nothing cannot hold a dispose.</summary>
    private static readonly TimeSpan GoAwayDrainTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Frames this side may have posted (PONG, CREDIT, REFUSE, RESET) and not yet sent: bounds what an unread relay costs.</summary>
    private const int MaxPostedFrames = 1024;

    private readonly SecureChannel _hop;
    private readonly RelayLinkOptions _options;
    private readonly uint _window;
    private readonly Lock _lock = new();

    // Every live circuit id: a PendingOpen (ours, unanswered), an IncomingCircuit (theirs, unanswered) or a Circuit.
    private readonly Dictionary<uint, object> _ids = [];
    private readonly Dictionary<ulong, PendingPing> _pings = [];
    private readonly Channel<IncomingCircuit> _incoming;
    private readonly TaskCompletionSource<ReasonFrame> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lazy<Task> _hopDisposal;
    private Task _receiveLoop = Task.CompletedTask;
    private LinkEnd? _ended;
    private uint _nextId = 1;
    private int _disposed;
    private int _posted;
    private bool _overwhelmed;

    private RelayLink(SecureChannel hop, RelayLinkOptions options, WelcomeFrame welcome)
    {
        _hop = hop;
        _options = options;
        Welcome = welcome;
        _window = Math.Min((uint)options.CircuitWindow, welcome.MaxWindow);
        _incoming = System.Threading.Channels.Channel.CreateBounded<IncomingCircuit>(new BoundedChannelOptions(options.MaxPendingIncoming)
        {
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _hopDisposal = new Lazy<Task>(() => _hop.DisposeAsync().AsTask());
    }

    /// <summary>What the relay granted: its name, this hop's registered addresses, and its circuit limits.</summary>
    public WelcomeFrame Welcome { get; }

    /// <summary>The relay, as the hop's handshake verified it.</summary>
    public VerifiedPeer Relay => _hop.Peer;

    /// <summary>
    /// Completes when the hop has ended: with the relay's GOAWAY code and reason, <see cref="RelayErrorCode.Normal"/>
    /// on a graceful close (or this side's dispose), <see cref="RelayErrorCode.PeerGone"/> when the hop's channel
    /// failed, <see cref="RelayErrorCode.ProtocolViolation"/> when the relay broke the protocol.
    /// </summary>
    public Task<ReasonFrame> Completion => _completion.Task;

    /// <summary>The receive window this side announces for each circuit: the configured one, clamped to the relay's maximum.</summary>
    internal uint Window => _window;

    /// <summary>
    /// Says HELLO over an open hop (this side was the initiator) and waits for WELCOME. The link owns the hop
    /// from now on, also when this fails (the hop is then disposed).
    /// </summary>
    /// <exception cref="RelayException">The relay answered GOAWAY (<see cref="RelayException.FromPeer"/> set), broke the protocol, or closed the hop.</exception>
    /// <exception cref="TimeoutException">No WELCOME within <see cref="RelayLinkOptions.WelcomeTimeout"/>.</exception>
    /// <exception cref="SecureChannelException">The hop failed.</exception>
    public static async Task<RelayLink> ConnectAsync(SecureChannel hop, RelayLinkOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(hop);
        ArgumentNullException.ThrowIfNull(options);
        WelcomeFrame welcome;
        try
        {
            if (!options.Listen && options.Names.Count > 0)
            {
                throw new ArgumentException("An outbound-only link (Listen = false) registers no names.", nameof(options));
            }

            welcome = await HandshakeAsync(hop, options, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await hop.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        var link = new RelayLink(hop, options, welcome);
        link._receiveLoop = Task.Run(link.ReceiveLoopAsync, CancellationToken.None);
        return link;
    }

    /// <summary>
    /// Opens a circuit to <paramref name="address"/> (<c>target</c> or <c>target@relay</c>) and waits for the
    /// target to accept it. Cancelling resets the circuit.
    /// </summary>
    /// <exception cref="FormatException"><paramref name="address"/> is not a relay address.</exception>
    /// <exception cref="RelayException">The relay or the target refused (<see cref="RelayException.FromPeer"/> set), or the hop ended.</exception>
    /// <exception cref="ObjectDisposedException">The link was disposed.</exception>
    public async Task<Circuit> OpenCircuitAsync(string address, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(address);
        var text = RelayAddress.Parse(address).ToString();
        cancellationToken.ThrowIfCancellationRequested();
        var open = new PendingOpen(text);
        uint id;
        lock (_lock)
        {
            ThrowIfEnded();
            id = AllocateId();
            _ids.Add(id, open);
        }

        try
        {
            await SendAsync(RelayFrames.Open(id, new OpenFrame(text, _window, null, null, [])), cancellationToken).ConfigureAwait(false);
            return await open.Completion.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            if (Forget(id, open))
            {
                open.Completion.TrySetCanceled(cancellationToken);
                await TrySendAsync(RelayFrames.CircuitReason(RelayFrameType.Reset, id, RelayErrorCode.Normal, "The opener cancelled.")).ConfigureAwait(false);
            }
            else if (open.Completion.Task.IsCompletedSuccessfully)
            {
                // Accepted just as the caller gave up: nobody will use the circuit.
                var circuit = await open.Completion.Task.ConfigureAwait(false);
                await circuit.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }
        catch (RelayException) when (Forget(id, open))
        {
            // The hop failed while sending OPEN; the id is free again (the filter released it).
            throw;
        }
    }

    /// <summary>
    /// Waits for the next circuit the relay opens toward this agent. At most
    /// <see cref="RelayLinkOptions.MaxPendingIncoming"/> wait here; more are refused with <see cref="RelayErrorCode.LimitExceeded"/>.
    /// </summary>
    /// <exception cref="RelayException">The hop ended.</exception>
    public async ValueTask<IncomingCircuit> AcceptCircuitAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            IncomingCircuit incoming;
            try
            {
                incoming = await _incoming.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ChannelClosedException e) when (e.InnerException is RelayException failure)
            {
                throw new RelayException(failure.Code, failure.Message, failure.FromPeer);
            }

            lock (_lock)
            {
                // One the relay already reset (its open timeout) is skipped.
                if (incoming.State == IncomingCircuit.IncomingState.Pending)
                {
                    return incoming;
                }
            }
        }
    }

    /// <summary>Sends a PING with a random nonce and returns the time until the matching PONG.</summary>
    /// <exception cref="RelayException">The hop ended first.</exception>
    public async ValueTask<TimeSpan> PingAsync(CancellationToken cancellationToken = default)
    {
        var time = _options.TimeProvider;
        var pending = new PendingPing(time.GetTimestamp());
        ulong nonce;
        lock (_lock)
        {
            ThrowIfEnded();
            Span<byte> random = stackalloc byte[RelayLimits.PingNonceLength];
            do
            {
                RandomNumberGenerator.Fill(random);
                nonce = BinaryPrimitives.ReadUInt64BigEndian(random);
            }
            while (!_pings.TryAdd(nonce, pending));
        }

        try
        {
            await SendAsync(RelayFrames.Ping(RelayFrameType.Ping, nonce), cancellationToken).ConfigureAwait(false);
            return await pending.Completion.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            lock (_lock)
            {
                _pings.Remove(nonce);
            }
        }
    }

    /// <summary>Says GOAWAY (best effort), resets every circuit locally, and disposes the hop.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            bool live;
            lock (_lock)
            {
                live = _ended is null;
            }

            if (live)
            {
                using var drain = new CancellationTokenSource(GoAwayDrainTimeout, _options.TimeProvider);
                await TrySendAsync(_hop, RelayFrames.GoAway(RelayErrorCode.Normal, "closing"), drain.Token).ConfigureAwait(false);
                End(new ReasonFrame(RelayErrorCode.Normal, "closing"), new LinkEnd(RelayErrorCode.Normal, "The relay link was disposed.", FromPeer: false));
            }
        }

        await _hopDisposal.Value.ConfigureAwait(false);
        await _receiveLoop.ConfigureAwait(false);
    }

    internal static RelayException Violation(string what) => new(RelayErrorCode.ProtocolViolation, $"Protocol violation: {what}.");

    /// <summary>Sends one frame; a failed hop reads as the link's end (or <see cref="RelayErrorCode.PeerGone"/>).</summary>
    internal async ValueTask SendAsync(ReadOnlyMemory<byte> frame, CancellationToken cancellationToken = default)
    {
        try
        {
            await _hop.SendAsync(frame, cancellationToken).ConfigureAwait(false);
        }
        // A hop whose connection failed under the flush (a socket reset by a killed relay) is the hop failing, not a
        // crash of the caller. SecureChannel reports it as ConnectionLost; IOException stays for any transport that lets
        // its own error through.
        catch (Exception e) when (e is SecureChannelException or ObjectDisposedException or IOException)
        {
            LinkEnd? ended;
            lock (_lock)
            {
                ended = _ended;
            }

            throw ended?.ToException() ?? new RelayException(RelayErrorCode.PeerGone, $"The relay hop failed: {e.Message}", e);
        }
    }

    /// <summary>Sends one frame, ignoring a failed hop (the receive loop notices that on its own).</summary>
    internal Task TrySendAsync(byte[] frame) => TrySendAsync(_hop, frame, CancellationToken.None);

    /// <summary>Sends one frame without waiting for it: for the receive loop and for synchronous callers.</summary>
    internal void Post(byte[] frame)
    {
        // Fire and forget, but counted: a relay that floods PINGs or OPENs and reads none of the answers would
        // otherwise grow the queue of pending sends without bound. Past the limit the receive loop ends the link.
        if (Interlocked.Increment(ref _posted) > MaxPostedFrames)
        {
            Volatile.Write(ref _overwhelmed, true);
        }

        _ = PostAsync(frame);
    }

    private async Task PostAsync(byte[] frame)
    {
        try
        {
            await TrySendAsync(frame).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _posted);
        }
    }

    /// <summary>Frees a circuit's id once the circuit has ended.</summary>
    internal void Release(uint id, Circuit circuit)
    {
        lock (_lock)
        {
            if (_ids.TryGetValue(id, out var current) && ReferenceEquals(current, circuit))
            {
                _ids.Remove(id);
            }
        }
    }

    internal async Task<Circuit> AcceptIncomingAsync(IncomingCircuit incoming, CancellationToken cancellationToken)
    {
        Circuit circuit;
        lock (_lock)
        {
            switch (incoming.State)
            {
                case IncomingCircuit.IncomingState.Answered:
                    throw new InvalidOperationException("The circuit was already accepted or refused.");
                case IncomingCircuit.IncomingState.Ended:
                    var failure = incoming.Failure!;
                    throw new RelayException(failure.Code, failure.Message, failure.FromPeer);
            }

            incoming.State = IncomingCircuit.IncomingState.Answered;
            circuit = new Circuit(this, incoming.Id, incoming.Address, incoming.Opener, incoming.Principal, incoming.Via, _window, incoming.PeerWindow, Welcome.MaxData);
            _ids[incoming.Id] = circuit;
        }

        circuit.Start();
        try
        {
            await SendAsync(RelayFrames.WindowFrame(RelayFrameType.Accept, incoming.Id, _window), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await circuit.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return circuit;
    }

    internal async ValueTask RefuseIncomingAsync(IncomingCircuit incoming, RelayErrorCode code, string reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        lock (_lock)
        {
            switch (incoming.State)
            {
                case IncomingCircuit.IncomingState.Answered:
                    throw new InvalidOperationException("The circuit was already accepted or refused.");
                case IncomingCircuit.IncomingState.Ended:
                    return;
            }

            incoming.State = IncomingCircuit.IncomingState.Answered;
            _ids.Remove(incoming.Id);
        }

        await TrySendAsync(RelayFrames.CircuitReason(RelayFrameType.Refuse, incoming.Id, code, reason)).ConfigureAwait(false);
    }

    private static async Task<WelcomeFrame> HandshakeAsync(SecureChannel hop, RelayLinkOptions options, CancellationToken cancellationToken)
    {
        await hop.SendAsync(RelayFrames.Hello(new HelloFrame(options.Listen, options.Names, null)), cancellationToken).ConfigureAwait(false);
        using var timeout = new CancellationTokenSource(options.WelcomeTimeout, options.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            while (true)
            {
                using var message = await hop.ReceiveAsync(linked.Token).ConfigureAwait(false)
                    ?? throw new RelayException(RelayErrorCode.PeerGone, "The relay closed the hop before WELCOME.");
                var frame = message.Payload;
                try
                {
                    var type = RelayFrames.ReadType(frame.Span);
                    switch (type)
                    {
                        case RelayFrameType.Welcome:
                            var welcome = RelayFrames.DecodeWelcome(frame);
                            return welcome.MaxWindow > 0 && welcome.MaxData > 0 ? welcome : throw Violation("a WELCOME with max_window or max_data 0");
                        case RelayFrameType.GoAway:
                            var goAway = RelayFrames.DecodeGoAway(frame);
                            throw new RelayException(goAway.Code, $"The relay refused the hop ({goAway.Code}): {goAway.Reason}", fromPeer: true);
                        case RelayFrameType.Ping:
                            await hop.SendAsync(RelayFrames.Ping(RelayFrameType.Pong, RelayFrames.DecodePing(frame.Span)), linked.Token).ConfigureAwait(false);
                            break;
                        case RelayFrameType.Pong:
                            RelayFrames.DecodePing(frame.Span);
                            break;
                        default:
                            throw Violation($"a {type} frame before WELCOME");
                    }
                }
                catch (RelayException e) when (e.Code == RelayErrorCode.ProtocolViolation && !e.FromPeer)
                {
                    await TrySendAsync(hop, RelayFrames.GoAway(RelayErrorCode.ProtocolViolation, e.Message), linked.Token).ConfigureAwait(false);
                    throw;
                }
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"The relay sent no WELCOME within {options.WelcomeTimeout}.");
        }
    }

    private static async Task TrySendAsync(SecureChannel hop, byte[] frame, CancellationToken cancellationToken)
    {
        try
        {
            await hop.SendAsync(frame, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SecureChannelException or ObjectDisposedException or OperationCanceledException or IOException)
        {
            // Best effort: the hop is failing or closing anyway.
        }
    }

    private async Task ReceiveLoopAsync()
    {
        ReasonFrame end;
        LinkEnd circuits;
        try
        {
            while (true)
            {
                using var message = await _hop.ReceiveAsync().ConfigureAwait(false);
                if (message is null)
                {
                    end = new ReasonFrame(RelayErrorCode.Normal, "The relay closed the hop.");
                    circuits = new LinkEnd(RelayErrorCode.PeerGone, "The relay closed the hop.", FromPeer: true);
                    break;
                }

                if (Volatile.Read(ref _overwhelmed))
                {
                    throw Violation($"more than {MaxPostedFrames} answers are waiting for the relay to read them");
                }

                if (Dispatch(message.Payload) is { } goAway)
                {
                    end = goAway;
                    var code = goAway.Code == RelayErrorCode.Normal ? RelayErrorCode.PeerGone : goAway.Code;
                    circuits = new LinkEnd(code, $"The relay ended the hop ({goAway.Code}): {goAway.Reason}", FromPeer: true);
                    break;
                }
            }
        }
        catch (RelayException e) when (e.Code == RelayErrorCode.ProtocolViolation && !e.FromPeer)
        {
            LogViolation(_options.Logger, Welcome.Relay, e.Message);
            using var drain = new CancellationTokenSource(GoAwayDrainTimeout, _options.TimeProvider);
            await TrySendAsync(_hop, RelayFrames.GoAway(RelayErrorCode.ProtocolViolation, e.Message), drain.Token).ConfigureAwait(false);
            end = new ReasonFrame(RelayErrorCode.ProtocolViolation, RelayFrames.CutReason(e.Message));
            circuits = new LinkEnd(RelayErrorCode.ProtocolViolation, $"The relay broke the protocol: {e.Message}", FromPeer: false);
        }
        catch (Exception e) when (e is SecureChannelException or ObjectDisposedException)
        {
            end = new ReasonFrame(RelayErrorCode.PeerGone, RelayFrames.CutReason($"The hop failed: {e.Message}"));
            circuits = new LinkEnd(RelayErrorCode.PeerGone, $"The relay hop failed: {e.Message}", FromPeer: false);
        }
#pragma warning disable CA1031 // The loop must end the link whatever failed; the cause is logged and reported as InternalError.
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogFailure(_options.Logger, Welcome.Relay, e);
            end = new ReasonFrame(RelayErrorCode.InternalError, "The relay link failed.");
            circuits = new LinkEnd(RelayErrorCode.InternalError, $"The relay link failed: {e.Message}", FromPeer: false);
        }

        End(end, circuits);
        await _hopDisposal.Value.ConfigureAwait(false);
    }

    /// <summary>Handles one frame; returns the relay's GOAWAY, which ends the loop.</summary>
    private ReasonFrame? Dispatch(ReadOnlyMemory<byte> frame)
    {
        var span = frame.Span;
        var type = RelayFrames.ReadType(span);
        switch (type)
        {
            case RelayFrameType.GoAway:
                return RelayFrames.DecodeGoAway(frame);
            case RelayFrameType.Ping:
                Post(RelayFrames.Ping(RelayFrameType.Pong, RelayFrames.DecodePing(span)));
                return null;
            case RelayFrameType.Pong:
                OnPong(RelayFrames.DecodePing(span));
                return null;
            case RelayFrameType.Hello or RelayFrameType.Welcome:
                throw Violation($"an unexpected {type}");
        }

        var id = RelayFrames.ReadCircuit(span);
        if (type == RelayFrameType.Open)
        {
            OnOpen(id, RelayFrames.DecodeOpen(frame));
            return null;
        }

        object? entry;
        lock (_lock)
        {
            _ids.TryGetValue(id, out entry);
        }

        switch (type)
        {
            case RelayFrameType.Accept:
                OnAccept(id, entry, RelayFrames.DecodeWindow(span));
                break;
            case RelayFrameType.Refuse:
                OnRefuseOrReset(id, entry, RelayFrames.DecodeCircuitReason(frame, type), type);
                break;
            case RelayFrameType.Reset:
                OnRefuseOrReset(id, entry, RelayFrames.DecodeCircuitReason(frame, type), type);
                break;
            case RelayFrameType.Data:
                var body = span[RelayLimits.CircuitHeaderLength..];
                if (body.IsEmpty || body.Length > Welcome.MaxData)
                {
                    throw Violation($"a DATA body of {body.Length} bytes (1 to {Welcome.MaxData} allowed)");
                }

                AcceptedCircuit(id, entry, type)?.OnData(body);
                break;
            case RelayFrameType.Credit:
                var increment = RelayFrames.DecodeWindow(span);
                AcceptedCircuit(id, entry, type)?.OnCredit(increment);
                break;
            case RelayFrameType.Close:
                RelayFrames.CheckClose(span);
                AcceptedCircuit(id, entry, type)?.OnClose();
                break;
        }

        return null;
    }

    /// <summary>The circuit a DATA, CREDIT or CLOSE is for; null for an id that already ended on this side (frames in flight).</summary>
    private static Circuit? AcceptedCircuit(uint id, object? entry, RelayFrameType type) => entry switch
    {
        null => null,
        Circuit circuit => circuit,
        _ => throw Violation($"a {type} on circuit {id}, which is not accepted yet"),
    };

    private void OnOpen(uint id, OpenFrame open)
    {
        if (id % 2 != 0)
        {
            throw Violation($"an OPEN with odd circuit id {id}; the relay allocates even ids");
        }

        if (open.Window == 0)
        {
            throw Violation("an OPEN with window 0");
        }

        var incoming = new IncomingCircuit(this, id, open);
        bool queued;
        lock (_lock)
        {
            if (_ended is not null)
            {
                return;
            }

            if (!_ids.TryAdd(id, incoming))
            {
                throw Violation($"an OPEN reusing live circuit id {id}");
            }

            queued = _options.Listen && _incoming.Writer.TryWrite(incoming);
            if (!queued)
            {
                _ids.Remove(id);
            }
        }

        if (!queued)
        {
            Post(_options.Listen
                ? RelayFrames.CircuitReason(RelayFrameType.Refuse, id, RelayErrorCode.LimitExceeded, "Too many circuits are waiting to be accepted.")
                : RelayFrames.CircuitReason(RelayFrameType.Refuse, id, RelayErrorCode.Refused, "This hop does not listen."));
        }
    }

    private void OnAccept(uint id, object? entry, uint window)
    {
        switch (entry)
        {
            case null:
                return; // An OPEN this side cancelled; its RESET is on the way.
            case PendingOpen open:
                var circuit = new Circuit(this, id, open.Address, null, null, [], _window, window, Welcome.MaxData);
                bool current;
                lock (_lock)
                {
                    current = _ids.TryGetValue(id, out var now) && ReferenceEquals(now, open);
                    if (current)
                    {
                        _ids[id] = circuit;
                    }
                }

                if (current)
                {
                    circuit.Start();
                    open.Completion.TrySetResult(circuit);
                }

                return;
            default:
                throw Violation($"an ACCEPT for circuit {id}, which this side did not open or already saw accepted");
        }
    }

    private void OnRefuseOrReset(uint id, object? entry, ReasonFrame reason, RelayFrameType type)
    {
        switch (entry)
        {
            case null:
                return;
            case PendingOpen open:
                if (Forget(id, open))
                {
                    var verb = type == RelayFrameType.Refuse ? "refused" : "reset";
                    open.Completion.TrySetException(new RelayException(reason.Code, $"The circuit to {open.Address} was {verb} ({reason.Code}): {reason.Reason}", fromPeer: true));
                }

                return;
            case IncomingCircuit incoming when type == RelayFrameType.Reset:
                lock (_lock)
                {
                    if (incoming.State == IncomingCircuit.IncomingState.Pending)
                    {
                        incoming.State = IncomingCircuit.IncomingState.Ended;
                        incoming.Failure = new RelayException(reason.Code, $"The opener's circuit was reset ({reason.Code}): {reason.Reason}", fromPeer: true);
                    }

                    if (_ids.TryGetValue(id, out var now) && ReferenceEquals(now, incoming))
                    {
                        _ids.Remove(id);
                    }
                }

                return;
            case Circuit circuit when type == RelayFrameType.Reset:
                circuit.OnReset(reason);
                return;
            default:
                throw Violation($"a {type} for circuit {id}, which this side opened no unanswered circuit on");
        }
    }

    private void OnPong(ulong nonce)
    {
        PendingPing? pending;
        lock (_lock)
        {
            _pings.Remove(nonce, out pending);
        }

        pending?.Completion.TrySetResult(_options.TimeProvider.GetElapsedTime(pending.Started));
    }

    /// <summary>Ends the link once: fails what waits on it and every circuit, and completes <see cref="Completion"/>.</summary>
    private void End(ReasonFrame end, LinkEnd circuits)
    {
        List<object> entries;
        List<PendingPing> pings;
        lock (_lock)
        {
            if (_ended is not null)
            {
                return;
            }

            _ended = circuits;
            entries = [.. _ids.Values];
            _ids.Clear();
            pings = [.. _pings.Values];
            _pings.Clear();
            foreach (var entry in entries)
            {
                if (entry is IncomingCircuit { State: IncomingCircuit.IncomingState.Pending } incoming)
                {
                    incoming.State = IncomingCircuit.IncomingState.Ended;
                    incoming.Failure = circuits.ToException();
                }
            }
        }

        _incoming.Writer.TryComplete(circuits.ToException());
        foreach (var entry in entries)
        {
            switch (entry)
            {
                case PendingOpen open:
                    open.Completion.TrySetException(circuits.ToException());
                    break;
                case Circuit circuit:
                    circuit.Abort(circuits.ToException());
                    break;
            }
        }

        foreach (var ping in pings)
        {
            ping.Completion.TrySetException(circuits.ToException());
        }

        LogEnded(_options.Logger, Welcome.Relay, end.Code, end.Reason);
        _completion.TrySetResult(end);
    }

    private bool Forget(uint id, PendingOpen open)
    {
        lock (_lock)
        {
            if (_ids.TryGetValue(id, out var current) && ReferenceEquals(current, open))
            {
                _ids.Remove(id);
                return true;
            }

            return false;
        }
    }

    /// <summary>The next free odd id (the dialer's), counting upward so a just-ended id is not soon reused.</summary>
    private uint AllocateId()
    {
        for (var attempt = 0; attempt <= _ids.Count; attempt++)
        {
            var id = _nextId;
            _nextId = id == uint.MaxValue ? 1 : id + 2;
            if (!_ids.ContainsKey(id))
            {
                return id;
            }
        }

        throw new RelayException(RelayErrorCode.LimitExceeded, "No circuit id is free on this hop.");
    }

    private void ThrowIfEnded()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_ended is not null)
        {
            throw _ended.ToException();
        }
    }

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "Relay link to {Relay} ended: {Code}: {Reason}")]
    private static partial void LogEnded(ILogger logger, string relay, RelayErrorCode code, string reason);

    [LoggerMessage(EventId = 102, Level = LogLevel.Warning, Message = "Relay {Relay} broke the relay protocol: {Detail}")]
    private static partial void LogViolation(ILogger logger, string relay, string detail);

    [LoggerMessage(EventId = 103, Level = LogLevel.Error, Message = "Relay link to {Relay} failed")]
    private static partial void LogFailure(ILogger logger, string relay, Exception exception);

    /// <summary>How the link ended, as each circuit and waiter sees it.</summary>
    private sealed record LinkEnd(RelayErrorCode Code, string Message, bool FromPeer)
    {
        public RelayException ToException() => new(Code, Message, FromPeer);
    }

    private sealed class PendingOpen(string address)
    {
        public string Address { get; } = address;

        public TaskCompletionSource<Circuit> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class PendingPing(long started)
    {
        public long Started { get; } = started;

        public TaskCompletionSource<TimeSpan> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
