import type { DispatchMessage } from "../bus/dispatch-message.js";
import { renderEmail, renderPush, renderSms, renderVoice } from "../domain/message.js";
import type { OutboundMessage } from "./provider.js";

/** Renders the attempt's message for its channel with the opened code. */
export function renderOutbound(dispatch: DispatchMessage, code: string, route: { providerRoute: string; traceparent?: string }): OutboundMessage {
  const base = {
    attemptId: dispatch.attemptId,
    verificationId: dispatch.verificationId,
    channel: dispatch.channel,
    providerRoute: route.providerRoute,
    to: dispatch.to,
    sender: dispatch.sender,
    ...(dispatch.render.locale ? { locale: dispatch.render.locale } : {}),
    ...(route.traceparent ? { traceparent: route.traceparent } : {}),
  };
  switch (dispatch.channel) {
    case "sms":
      return { ...base, text: renderSms(code, dispatch.render).text };
    case "email": {
      const email = renderEmail(code, dispatch.render);
      return { ...base, subject: email.subject, text: email.text, html: email.html };
    }
    case "voice":
      return { ...base, text: renderVoice(code, dispatch.render) };
    case "push": {
      const push = renderPush(code, dispatch.render);
      return { ...base, subject: push.title, text: push.body };
    }
    case "whatsapp":
      // The words are the approved template's (WhatsApp fixes an authentication template's text): only the code travels.
      return { ...base, text: code };
  }
}
