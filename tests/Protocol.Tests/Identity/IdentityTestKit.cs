using System.Runtime.CompilerServices;
using Microsoft.Extensions.Time.Testing;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Tests.Identity;

/// <summary>Identities, hand-made changes and error helpers for the identity and credential tests.</summary>
internal static class IdentityTestKit
{
    /// <summary>The start of every test clock: a fixed instant, so runs are reproducible.</summary>
    public static readonly DateTimeOffset Start = new(2026, 3, 1, 9, 0, 0, TimeSpan.Zero);

    public static FakeTimeProvider NewClock() => new(Start);

    /// <summary>A fresh Ed25519 signer. Typed as <see cref="ISigner"/>: the test process owns it until exit.</summary>
    public static ISigner NewSigner() => InMemorySigner.Generate();

    public static Task<AgentIdentity> NewIdentityAsync(TimeProvider time) => AgentIdentity.CreateAsync(NewSigner(), time);

    /// <summary>An identity rotated <paramref name="rotations"/> times, an hour apart.</summary>
    public static async Task<AgentIdentity> NewRotatedIdentityAsync(FakeTimeProvider time, int rotations)
    {
        var identity = await NewIdentityAsync(time);
        for (var i = 0; i < rotations; i++)
        {
            time.Advance(TimeSpan.FromHours(1));
            identity = await identity.RotateAsync(NewSigner(), time);
        }

        return identity;
    }

    /// <summary>Signs <paramref name="change"/> with its own key's signer and, when given, the previous key's signer.</summary>
    public static async Task<SignedIdentityChange> SignAsync(IdentityChange change, ISigner own, ISigner? previous)
    {
        var signature = await SignatureDomain.SignAsync(own, SignatureDomain.IdentityChange, change.Encoded);
        var previousSignature = previous is null ? null : await SignatureDomain.SignAsync(previous, SignatureDomain.IdentityChange, change.Encoded);
        return new SignedIdentityChange(change, signature, previousSignature);
    }

    /// <summary>
    /// A rotation of <paramref name="identity"/> to <paramref name="next"/>, made by hand: linked to the current change,
    /// signed by <paramref name="next"/> and, as the previous key, by <paramref name="previousSigner"/> (none when null).
    /// </summary>
    public static Task<SignedIdentityChange> HandRotationAsync(AgentIdentity identity, ISigner next, DateTimeOffset at, ISigner? previousSigner)
    {
        var change = new IdentityChange(identity.Verified.Current.ChangeHash, next.PublicKey, at);
        return SignAsync(change, next, previousSigner);
    }

    /// <summary>The history of <paramref name="identity"/> with <paramref name="extra"/> appended.</summary>
    public static IdentityHistory Append(AgentIdentity identity, params SignedIdentityChange[] extra) =>
        new([.. identity.History.Changes, .. extra]);

    public static IdentityException VerifyFails(IdentityHistory history, IdentityErrorKind expected)
    {
        var error = Assert.Throws<IdentityException>(() => history.Verify());
        Assert.Equal(expected, error.Kind);
        return error;
    }

    /// <summary>The Ed25519 verifications <paramref name="action"/> makes (only its own: the count is flow-local).</summary>
    public static int CountVerifications(Action action)
    {
        var count = new StrongBox<int>();
        SignatureDomain.VerificationsForTestingOnly.Value = count;
        try
        {
            action();
        }
        finally
        {
            SignatureDomain.VerificationsForTestingOnly.Value = null;
        }

        return count.Value;
    }

    /// <summary>
    /// The Ed25519 verifications <paramref name="action"/> makes, including in every task it starts (both ends of a
    /// handshake): the count flows with the execution context, and this method's change to it ends when it returns.
    /// </summary>
    public static async Task<int> CountVerificationsAsync(Func<Task> action)
    {
        var count = new StrongBox<int>();
        SignatureDomain.VerificationsForTestingOnly.Value = count;
        await action();
        return count.Value;
    }

    /// <summary>The first <see cref="WireFormatException"/> in <paramref name="error"/>'s chain of causes, itself included.</summary>
    public static WireFormatException? WireCause(Exception error)
    {
        for (var e = (Exception?)error; e is not null; e = e.InnerException)
        {
            if (e is WireFormatException wire)
            {
                return wire;
            }
        }

        return null;
    }

    /// <summary>The wire error kind inside <paramref name="error"/>; fails when there is none.</summary>
    public static WireErrorKind WireKind(Exception error) =>
        (WireCause(error) ?? throw new Xunit.Sdk.XunitException($"No WireFormatException inside {error.GetType().Name}: {error.Message}")).Kind;

    public static byte[] FlipBit(byte[] bytes, int index, int bit = 0)
    {
        var copy = bytes.ToArray();
        copy[index] ^= (byte)(1 << bit);
        return copy;
    }

    /// <summary>The index of the first occurrence of <paramref name="needle"/> in <paramref name="haystack"/>; fails when absent.</summary>
    public static int IndexOf(byte[] haystack, ReadOnlySpan<byte> needle)
    {
        var index = haystack.AsSpan().IndexOf(needle);
        Assert.True(index >= 0, "The expected bytes are not in the encoding.");
        return index;
    }
}
