using BenchmarkDotNet.Attributes;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;

namespace SecureChannels.Benchmarks;

/// <summary>
/// What one subscriber does with one pushed revocation list (40 entries, as in <c>--authority</c>'s propagation
/// run): decode the authority message and the signed list, verify the signature, merge into its registry. And the
/// signature check alone, to show how much of it is Ed25519.
/// </summary>
[MemoryDiagnoser]
public class RevocationPushBenchmarks
{
    private byte[] _message = [];
    private SignedRevocationList _list = null!;
    private VerifiedIdentity _authority = null!;

    [GlobalSetup]
    public async Task Setup()
    {
        using var signer = InMemorySigner.Generate();
        var authority = await AgentIdentity.CreateAsync(signer, FixedTimeProvider.Default);
        _authority = authority.Verified;
        var entries = Enumerable.Range(0, 40).Select(_ => RevocationEntry.ForCredential(Credential.NewId()));
        _list = await SignedRevocationList.SignAsync(new RevocationList(authority.Identifier, 40, FixedTimeProvider.Default.GetUtcNow(), entries), authority);
        _message = new AuthorityMessage(AuthorityMessageType.Revocations, 0, _list.Encode()).Encode();
        if (DecodeVerifyMerge() != RevocationMergeResult.Accepted)
        {
            throw new InvalidOperationException("The pushed list did not merge.");
        }
    }

    [Benchmark(Baseline = true)]
    public RevocationMergeResult DecodeVerifyMerge()
    {
        var message = AuthorityMessage.Decode(_message);
        return new RevocationRegistry().Merge(SignedRevocationList.Decode(message.Body), _authority);
    }

    [Benchmark]
    public bool VerifySignatureOnly() =>
        SignatureDomain.Verify(_authority.PublicKey, SignatureDomain.RevocationList, _list.List.Encoded, _list.Signature);
}
