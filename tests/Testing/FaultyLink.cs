using System.IO.Pipelines;

namespace SecureChannels.Testing;

/// <summary>
/// A link that forwards length-prefixed frames both ways between two <see cref="IDuplexPipe"/>s (each the link's
/// end towards one party: it reads what that party sent and writes what that party will read), injecting the faults
/// of one <see cref="FaultPlan"/> per direction. A cut ends both directions at once, as a broken connection does.
/// </summary>
public sealed class FaultyLink
{
    private readonly LinkCut _cut = new();

    public FaultyLink(IDuplexPipe left, IDuplexPipe right, FaultPlan? leftToRight = null, FaultPlan? rightToLeft = null, bool capture = false)
    {
        ArgumentNullException.ThrowIfNull(left);
        ArgumentNullException.ThrowIfNull(right);
        LeftToRight = new FrameRelay(left.Input, right.Output, leftToRight, _cut, capture);
        RightToLeft = new FrameRelay(right.Input, left.Output, rightToLeft, _cut, capture);
    }

    public FrameRelay LeftToRight { get; }

    public FrameRelay RightToLeft { get; }

    /// <summary>Ends when both directions have ended.</summary>
    public Task Completion => Task.WhenAll(LeftToRight.Completion, RightToLeft.Completion);

    /// <summary>The most bytes the link ever held, both directions together (an upper bound: each direction's own peak, summed).</summary>
    public long MaxHeldBytes => LeftToRight.MaxHeldBytes + RightToLeft.MaxHeldBytes;

    public bool IsCut => _cut.IsCut;

    /// <summary>
    /// Cuts the link now: both directions stop passing frames on; each party's reader sees the end of its stream
    /// (or <paramref name="error"/>) and each party's writer sees that nobody reads any more, or, with
    /// <paramref name="resetWriters"/>, fails with <paramref name="error"/> as a writer to a reset socket does.
    /// </summary>
    public void Cut(Exception? error = null, bool resetWriters = false) => _cut.Cut(error, resetWriters);

    /// <summary>
    /// Puts a faulty link in front of <paramref name="far"/> (e.g. a TCP connection): returns the end a party uses
    /// instead of <paramref name="far"/>, and the link. <paramref name="toFar"/> applies to what the party sends.
    /// </summary>
    public static (IDuplexPipe Near, FaultyLink Link) Interpose(IDuplexPipe far, FaultPlan? toFar = null, FaultPlan? fromFar = null, PipeOptions? options = null, bool capture = false)
    {
        var outgoing = new Pipe(options ?? PipeOptions.Default);
        var incoming = new Pipe(options ?? PipeOptions.Default);
        var link = new FaultyLink(new DuplexPipe(outgoing.Reader, incoming.Writer), far, toFar, fromFar, capture);
        return (new DuplexPipe(incoming.Reader, outgoing.Writer), link);
    }

    /// <summary>A duplex pipe made of a reader and a writer.</summary>
    public sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}

/// <summary>
/// Two in-memory ends (an initiator's and a responder's) joined by a <see cref="FaultyLink"/>: what a test opens a
/// channel over when the wire between the two must misbehave.
/// </summary>
public sealed class FaultyConnection
{
    /// <param name="toResponder">Faults on what the initiator sends.</param>
    /// <param name="toInitiator">Faults on what the responder sends.</param>
    /// <param name="options">Options of all four pipes, unless one of the next two applies.</param>
    /// <param name="initiatorOutput">Options of the pipe the initiator writes into (its pause threshold bounds what the link can be handed at once).</param>
    /// <param name="responderInput">Options of the pipe the responder reads from.</param>
    /// <param name="capture">Record every byte the link sees and sends on (see <see cref="FrameRelay.Capture"/>).</param>
    public FaultyConnection(FaultPlan? toResponder = null, FaultPlan? toInitiator = null, PipeOptions? options = null, PipeOptions? initiatorOutput = null, PipeOptions? responderInput = null, bool capture = false)
    {
        options ??= PipeOptions.Default;
        var initiatorOut = new Pipe(initiatorOutput ?? options);
        var responderIn = new Pipe(responderInput ?? options);
        var responderOut = new Pipe(options);
        var initiatorIn = new Pipe(options);
        Initiator = new FaultyLink.DuplexPipe(initiatorIn.Reader, initiatorOut.Writer);
        Responder = new FaultyLink.DuplexPipe(responderIn.Reader, responderOut.Writer);
        Link = new FaultyLink(
            new FaultyLink.DuplexPipe(initiatorOut.Reader, initiatorIn.Writer),
            new FaultyLink.DuplexPipe(responderOut.Reader, responderIn.Writer),
            toResponder,
            toInitiator,
            capture);
    }

    public IDuplexPipe Initiator { get; }

    public IDuplexPipe Responder { get; }

    public FaultyLink Link { get; }

    public FrameRelay ToResponder => Link.LeftToRight;

    public FrameRelay ToInitiator => Link.RightToLeft;

    public (IDuplexPipe Initiator, IDuplexPipe Responder) Ends => (Initiator, Responder);
}
