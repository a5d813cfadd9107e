using System.Buffers;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Messaging;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Fuzz.Targets;

/// <summary>
/// The smaller envelopes and documents. First byte picks:
/// 0: <see cref="AuthorityMessage.Decode"/>, then its body by its type with the decoder the authority or client uses
/// (a reply's body through every reply decoder, a refusal through <see cref="AuthorityMessage.ToException"/>);
/// 1: <see cref="MessageEnvelope.ReadHeader"/>; 2: <see cref="CredentialUpdate.Decode"/>;
/// 3: <see cref="SignedPolicyDocument.Decode"/>, verified and merged into a <see cref="PolicyBook"/>;
/// 4 (signed): the rest is an unsigned <see cref="PolicyDocument"/>, signed by the cast member it names, then verified and merged;
/// 5: <see cref="SignedDelegationReceipt.Decode"/> and whether it covers bob's credential.
/// Expected: <see cref="WireFormatException"/>; <see cref="CredentialException"/> from signatures and chains.
/// </summary>
public sealed class MessagesTarget : IFuzzTarget
{
    public string Name => "messages";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }

        var body = input[1..].ToArray();
        try
        {
            switch (input[0] % 6)
            {
                case 0:
                    Authority(AuthorityMessage.Decode(body));
                    break;
                case 1:
                    var header = MessageEnvelope.ReadHeader(body, out var offset);
                    if (offset < 1 || offset > body.Length)
                    {
                        throw new FuzzInvariantException($"ReadHeader returned body offset {offset} for a message of {body.Length} bytes.");
                    }

                    var again = new ArrayBufferWriter<byte>();
                    MessageEnvelope.WriteHeader(again, header);
                    if (!again.WrittenSpan.SequenceEqual(body.AsSpan(0, offset)))
                    {
                        throw new FuzzInvariantException("A message header does not re-encode to its own bytes.");
                    }

                    break;
                case 2:
                    CredentialUpdate.Decode(body, 8);
                    break;
                case 3:
                    Merge(SignedPolicyDocument.Decode(body));
                    break;
                case 4:
                    var document = PolicyDocument.Decode(body);
                    if (FuzzWorld.Find(document.Issuer) is { } issuer)
                    {
                        // Signed by whoever it names (only the authority's is trusted); a stranger's cannot be signed here.
                        Merge(SignedPolicyDocument.SignAsync(document, issuer).GetAwaiter().GetResult());
                    }

                    break;
                default:
                    SignedDelegationReceipt.Decode(body).Covers(FuzzWorld.BobChain.Leaf, FuzzWorld.Authority.Verified);
                    break;
            }
        }
        catch (WireFormatException)
        {
        }
        catch (CredentialException)
        {
        }
    }

    public IEnumerable<byte[]> Seeds()
    {
        var authority = FuzzWorld.Authority;
        var ticket = new TicketRequest(FuzzWorld.Principal, AttributeSet.Parse(["role=billing"]), TimeSpan.FromHours(1), TimeSpan.FromHours(8), 2);
        yield return [0, .. new AuthorityMessage(AuthorityMessageType.CreateTicket, 1, ticket.Encode()).Encode()];
        yield return [0, .. new AuthorityMessage(AuthorityMessageType.Revoke, 2, new RevokeRequest(RevocationEntry.ForSubject(FuzzWorld.Bob.Identifier), "lost laptop").Encode()).Encode()];
        yield return [0, .. new AuthorityMessage(AuthorityMessageType.Query, 3, new RegistryQuery(RegistryQueryKind.ActingFor, "user:alice@example.com").Encode()).Encode()];
        yield return [0, .. new AuthorityMessage(AuthorityMessageType.PublishPolicy, 4, new PublishPolicyRequest("ledger", "subject.role == \"billing\"").Encode()).Encode()];
        yield return [0, .. new AuthorityMessage(AuthorityMessageType.Subscribe, 5, new SubscribeRequest(3, new Dictionary<string, ulong> { ["ledger"] = 2 }).Encode()).Encode()];
        yield return [0, .. new AuthorityMessage(AuthorityMessageType.Reply, 4, RevokeRequest.EncodeSequence(9)).Encode()];
        yield return [0, .. AuthorityMessage.Refuse(6, AuthorityErrorCode.Internal, "no").Encode()];
        var entry = new RegistryEntry(FuzzWorld.Id(2), FuzzWorld.Id(1), FuzzWorld.Alice.Identifier, FuzzWorld.Bob.Identifier, FuzzWorld.Principal, AttributeSet.Parse(["role=billing"]), FuzzWorld.Now, FuzzWorld.Now.AddHours(1));
        yield return [0, .. new AuthorityMessage(AuthorityMessageType.Reply, 3, RegistryEntry.EncodeList([entry])).Encode()];
        foreach (var header in new[]
        {
            MessageHeader.ForBytes(),
            MessageHeader.ForMessage("billing.invoice"),
            MessageHeader.ForRequest(7, "billing.quote", TimeSpan.FromSeconds(30), new Guid(FuzzWorld.Id(3)), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            MessageHeader.ForResponse(7, "billing.quote"),
            MessageHeader.ForFault(7, MessageFaultCode.BadRequest, "no such account"),
        })
        {
            var writer = new ArrayBufferWriter<byte>();
            MessageEnvelope.WriteHeader(writer, header);
            yield return [1, .. writer.WrittenSpan, .. "body"u8];
        }

        yield return [2, .. CredentialUpdate.Encode([FuzzWorld.AliceChain])];
        var document = new PolicyDocument(authority.Identifier, "ledger", 2, FuzzWorld.Now, "subject.role == \"billing\" && peer.chain_length <= 2");
        yield return [3, .. SignedPolicyDocument.SignAsync(document, authority).GetAwaiter().GetResult().Encode()];
        yield return [4, .. document.Encoded];
        yield return [5, .. SignedDelegationReceipt.SignAsync(authority, FuzzWorld.BobChain.Leaf, FuzzWorld.Now).GetAwaiter().GetResult().Encoded];
    }

    private static void Authority(AuthorityMessage message)
    {
        switch (message.Type)
        {
            case AuthorityMessageType.CreateTicket:
                TicketRequest.Decode(message.Body);
                break;
            case AuthorityMessageType.Revoke:
                RevokeRequest.Decode(message.Body);
                break;
            case AuthorityMessageType.Query:
                RegistryQuery.Decode(message.Body);
                break;
            case AuthorityMessageType.PublishPolicy:
                PublishPolicyRequest.Decode(message.Body);
                break;
            case AuthorityMessageType.Subscribe:
                SubscribeRequest.Decode(message.Body);
                break;
            case AuthorityMessageType.RegisterDelegation:
            case AuthorityMessageType.Enroll:
            case AuthorityMessageType.Refresh:
                // Their bodies wrap chains and tickets read by the authority itself; the chain decoder has its own target.
                break;
            case AuthorityMessageType.Refusal:
                message.ToException();
                break;
            case AuthorityMessageType.Revocations:
                SignedRevocationList.Decode(message.Body);
                break;
            case AuthorityMessageType.Policy:
                SignedPolicyDocument.Decode(message.Body);
                break;
            default:
                Reply(message.Body);
                break;
        }
    }

    // A reply's body is read by the decoder of the request it answers; try each, as a confused client might.
    private static void Reply(byte[] body)
    {
        Action[] decoders = [() => IssuedTicket.Decode(body), () => RevokeRequest.DecodeSequence(body), () => RegistryEntry.DecodeList(body)];
        foreach (var decode in decoders)
        {
            try
            {
                decode();
            }
            catch (WireFormatException)
            {
            }
        }
    }

    private static void Merge(SignedPolicyDocument document)
    {
        document.Verify(FuzzWorld.Authority.Verified);
        var book = new PolicyBook();
        book.Merge(document, FuzzWorld.Authority.Verified);
        if (book.Find(document.Document.Resource) is null)
        {
            throw new FuzzInvariantException("A verified policy document merged into an empty book is not found there.");
        }
    }
}
