using System.Reflection;
using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;
using SecureChannels.Authority.Audit;
using SecureChannels.Authority.Storage;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;

namespace SecureChannels.Authority.Tests.Audit;

/// <summary>Authorities with fixed keys, sealed chains and tampering helpers for the audit tests.</summary>
internal static class AuditTestKit
{
    /// <summary>The start of every test clock: a fixed instant, so runs are reproducible.</summary>
    public static readonly DateTimeOffset Start = new(2026, 3, 1, 9, 0, 0, TimeSpan.Zero);

    /// <summary>A signer from a fixed seed: the same key, and so the same signatures, on every run.</summary>
    public static ISigner Signer(byte seed) => InMemorySigner.Import(Enumerable.Repeat(seed, 32).ToArray());

    public static Task<AgentIdentity> AuthorityAsync(byte seed = 1) => AgentIdentity.CreateAsync(Signer(seed), new FakeTimeProvider(Start));

    /// <summary>The draft of the <paramref name="index"/>-th test record, a second and a few milliseconds after the one before.</summary>
    public static AuditDraft Draft(int index) => new(
        Start.AddSeconds(index).AddMilliseconds(index * 7),
        $"sc1-actor-{index}",
        index % 3 == 0 ? string.Empty : $"user:{index}@example.org",
        index % 2 == 0 ? "issue" : "revoke",
        $"credential-{index:D4}",
        index % 4 == 0 ? string.Empty : $"reason {index}");

    /// <summary>A chain of <paramref name="count"/> records sealed by <paramref name="authority"/>.</summary>
    public static async Task<List<AuditRecord>> ChainAsync(AgentIdentity authority, int count)
    {
        var records = new List<AuditRecord>();
        for (var i = 1; i <= count; i++)
        {
            records.Add(await AuditChain.SealAsync(records.LastOrDefault(), Draft(i), authority));
        }

        return records;
    }

    /// <summary>The hash <paramref name="record"/>'s content really has.</summary>
    public static byte[] HashOf(AuditRecord record) => SHA256.HashData(AuditChain.Encode(
        record.Sequence, record.At, record.Actor, record.Principal, record.Action, record.Target, record.Reason, record.PreviousHash));

    /// <summary><paramref name="record"/> with its hash recomputed, its old signature kept.</summary>
    public static AuditRecord Rehash(AuditRecord record) => record with { Hash = HashOf(record) };

    /// <summary><paramref name="record"/> rehashed and signed again by <paramref name="signer"/>.</summary>
    public static async Task<AuditRecord> ResignAsync(AuditRecord record, ISigner signer)
    {
        var hash = HashOf(record);
        return record with { Hash = hash, Signature = await SignatureDomain.SignAsync(signer, SignatureDomain.AuditRecord, hash) };
    }

    /// <summary>AuditRecord compares its byte arrays by reference; this compares every field by value.</summary>
    public static void AssertSame(AuditRecord expected, AuditRecord actual)
    {
        Assert.Equal(expected.Sequence, actual.Sequence);
        Assert.Equal(expected.At, actual.At);
        Assert.Equal(expected.At.Offset, actual.At.Offset);
        Assert.Equal(expected.Actor, actual.Actor, StringComparer.Ordinal);
        Assert.Equal(expected.Principal, actual.Principal, StringComparer.Ordinal);
        Assert.Equal(expected.Action, actual.Action, StringComparer.Ordinal);
        Assert.Equal(expected.Target, actual.Target, StringComparer.Ordinal);
        Assert.Equal(expected.Reason, actual.Reason, StringComparer.Ordinal);
        Assert.Equal(expected.PreviousHash, actual.PreviousHash);
        Assert.Equal(expected.Hash, actual.Hash);
        Assert.Equal(expected.Signature, actual.Signature);
    }

    public static void AssertFails(AuditVerification result, AuditFailureKind kind, long firstBadSequence)
    {
        Assert.False(result.IsIntact);
        Assert.Equal(kind, result.Failure);
        Assert.Equal(firstBadSequence, result.FirstBadSequence);
        Assert.Equal(firstBadSequence - 1, result.RecordsChecked);
        Assert.NotNull(result.Detail);
        Assert.Equal(firstBadSequence == 1 ? null : firstBadSequence - 1, result.Head?.Sequence);
    }

    public static async IAsyncEnumerable<T> ToAsync<T>(IEnumerable<T> items)
    {
        foreach (var item in items)
        {
            await Task.Yield();
            yield return item;
        }
    }
}

/// <summary>
/// Just the audit part of <see cref="IAuthorityTransaction"/>, over a list. A DispatchProxy rather than a class
/// implementing the interface: the interface belongs to the store's work, still growing, and these tests should
/// not break each time it gains a member they do not use. Any other member throws.
/// </summary>
public class AuditOnlyTransaction : DispatchProxy
{
    public List<AuditRecord> Records { get; } = [];

    /// <summary>Every (from, limit) the audit log was read with, in order.</summary>
    public List<(long From, int Limit)> Reads { get; } = [];

    public static (IAuthorityTransaction Transaction, AuditOnlyTransaction Fake) Create()
    {
        var transaction = Create<IAuthorityTransaction, AuditOnlyTransaction>();
        return (transaction, (AuditOnlyTransaction)(object)transaction);
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        switch (targetMethod.Name)
        {
            case nameof(IAuthorityTransaction.LastAuditAsync):
                return Task.FromResult(Records.Count == 0 ? null : Records[^1]);
            case nameof(IAuthorityTransaction.AppendAuditAsync):
                var record = (AuditRecord)args![0]!;
                Assert.Equal(Records.Count + 1, record.Sequence);
                Records.Add(record);
                return Task.CompletedTask;
            case nameof(IAuthorityTransaction.ReadAuditAsync):
                var from = (long)args![0]!;
                var limit = (int)args[1]!;
                Reads.Add((from, limit));
                IReadOnlyList<AuditRecord> page = [.. Records.Where(r => r.Sequence >= from).OrderBy(r => r.Sequence).Take(limit)];
                return Task.FromResult(page);
            default:
                throw new NotSupportedException($"{targetMethod.Name} is not part of the audit fake.");
        }
    }
}
