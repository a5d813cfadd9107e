using System.Buffers;
using MessagePack;

namespace SecureChannels.Protocol.Channel;

/// <summary>
/// Typed messages over a channel, as a convenience on top of byte messages: values are serialized with
/// MessagePack. Deserialization runs with <see cref="MessagePackSecurity.UntrustedData"/>, because even an
/// authenticated peer is not trusted to send well-formed objects.
/// </summary>
public static class SecureChannelTypedExtensions
{
    private static readonly MessagePackSerializerOptions DefaultOptions =
        MessagePackSerializerOptions.Standard.WithSecurity(MessagePackSecurity.UntrustedData);

    /// <summary>Serializes <paramref name="value"/> and sends it as one message.</summary>
    /// <exception cref="MessagePackSerializationException">The value's type cannot be serialized.</exception>
    public static async ValueTask SendAsync<T>(this SecureChannel channel, T value, MessagePackSerializerOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(channel);
        var buffer = new ArrayBufferWriter<byte>();
        MessagePackSerializer.Serialize(buffer, value, options ?? DefaultOptions, cancellationToken);
        await channel.SendAsync(buffer.WrittenMemory, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Receives one message and deserializes it; default when the peer closed gracefully.</summary>
    /// <exception cref="MessagePackSerializationException">The message is not a valid <typeparamref name="T"/>.</exception>
    /// <exception cref="SecureChannelException">The channel ended abnormally.</exception>
    public static async ValueTask<T?> ReceiveAsync<T>(this SecureChannel channel, MessagePackSerializerOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(channel);
        using var message = await channel.ReceiveAsync(cancellationToken).ConfigureAwait(false);
        return message is null ? default : MessagePackSerializer.Deserialize<T>(message.Payload, options ?? DefaultOptions, cancellationToken);
    }
}
