using MessagePack;
using SecureChannels.Client.Messaging;

namespace Samples.Common;

// The contract between the orchestrator and the worker, the only code both must agree on.
// - [MessageType] names each type on the wire, so the two sides agree whatever assembly (or language) they are built
//   from; the ".v1" leaves room for a ".v2" that an old worker answers Unhandled instead of misreading.
// - MessagePack serializes public types with numbered keys: the numbers, not the property names, are the wire format,
//   so a field may be renamed but never renumbered, and a new field takes the next number.

/// <summary>Asks the worker for the price of <paramref name="Quantity"/> units of <paramref name="Item"/>.</summary>
/// <param name="Item">What to price: <c>widget</c>, <c>gadget</c> or <c>gizmo</c>.</param>
/// <param name="Quantity">How many, 1 to 10 000.</param>
[MessagePackObject]
[MessageType("samples.quote.v1")]
public sealed record QuoteRequest(
    [property: Key(0)] string Item,
    [property: Key(1)] int Quantity);

/// <summary>The worker's answer to a <see cref="QuoteRequest"/>.</summary>
/// <param name="Item">The item priced.</param>
/// <param name="Quantity">How many.</param>
/// <param name="Total">The price of them all.</param>
/// <param name="ApprovedFor">
/// Whom the quote was approved for: the principal the worker's handshake verified (the user the requesting agent acts
/// for, through however many delegations), never a name the requester wrote into its request.
/// </param>
[MessagePackObject]
[MessageType("samples.quote-reply.v1")]
public sealed record QuoteReply(
    [property: Key(0)] string Item,
    [property: Key(1)] int Quantity,
    [property: Key(2)] decimal Total,
    [property: Key(3)] string ApprovedFor);
