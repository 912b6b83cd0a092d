// Generated from motion.proto by generate-descriptor.ts. Do not edit by hand.

export const motionDescriptor = {
  "nested": {
    "MessageType": {
      "values": {
        "MESSAGE_TYPE_UNSPECIFIED": 0,
        "CLIENT_CONFIGURE_SESSION": 1,
        "SERVER_CONFIRM_SESSION": 2,
        "CLIENT_AUDIO_INPUT": 3,
        "SERVER_ERROR": 4,
        "SERVER_RESPONSE_ANIMATION": 5,
        "CLIENT_INTERRUPT": 7
      }
    },
    "AudioFormat": {
      "values": {
        "PCM_S16LE": 0,
        "OGG_OPUS": 1
      }
    },
    "TransportCompression": {
      "values": {
        "NONE": 0
      }
    },
    "EgressType": {
      "values": {
        "EGRESS_TYPE_UNSPECIFIED": 0,
        "LIVEKIT": 1,
        "AGORA": 2
      }
    },
    "LiveKitEgressConfig": {
      "fields": {
        "url": {
          "type": "string",
          "id": 1
        },
        "api_key": {
          "type": "string",
          "id": 2
        },
        "api_secret": {
          "type": "string",
          "id": 3
        },
        "room_name": {
          "type": "string",
          "id": 4
        },
        "publisher_id": {
          "type": "string",
          "id": 5
        },
        "extra_attributes": {
          "keyType": "string",
          "type": "string",
          "id": 6
        },
        "idle_timeout": {
          "type": "int32",
          "id": 7
        },
        "api_token": {
          "type": "string",
          "id": 8
        }
      }
    },
    "AgoraEgressConfig": {
      "fields": {
        "channel_name": {
          "type": "string",
          "id": 1
        },
        "token": {
          "type": "string",
          "id": 2
        },
        "uid": {
          "type": "uint32",
          "id": 3
        },
        "publisher_id": {
          "type": "string",
          "id": 4
        }
      }
    },
    "ClientConfigureSession": {
      "fields": {
        "sample_rate": {
          "type": "int32",
          "id": 1
        },
        "bitrate": {
          "type": "int32",
          "id": 2
        },
        "audio_format": {
          "type": "AudioFormat",
          "id": 3
        },
        "transport_compression": {
          "type": "TransportCompression",
          "id": 4
        },
        "egress_type": {
          "type": "EgressType",
          "id": 5
        },
        "livekit_egress": {
          "type": "LiveKitEgressConfig",
          "id": 6
        },
        "agora_egress": {
          "type": "AgoraEgressConfig",
          "id": 7
        },
        "extra_params": {
          "keyType": "string",
          "type": "string",
          "id": 8
        }
      }
    },
    "ServerConfirmSession": {
      "fields": {
        "connection_id": {
          "type": "string",
          "id": 1
        }
      }
    },
    "TraceContext": {
      "fields": {
        "traceparent": {
          "type": "string",
          "id": 1
        },
        "tracestate": {
          "type": "string",
          "id": 2
        }
      }
    },
    "ClientAudioInput": {
      "fields": {
        "req_id": {
          "type": "string",
          "id": 1
        },
        "end": {
          "type": "bool",
          "id": 2
        },
        "audio": {
          "type": "bytes",
          "id": 3
        },
        "trace_context": {
          "type": "TraceContext",
          "id": 4
        }
      }
    },
    "ServerError": {
      "fields": {
        "connection_id": {
          "type": "string",
          "id": 1
        },
        "req_id": {
          "type": "string",
          "id": 2
        },
        "code": {
          "type": "int32",
          "id": 3
        },
        "message": {
          "type": "string",
          "id": 4
        }
      }
    },
    "Flame": {
      "fields": {
        "translation": {
          "rule": "repeated",
          "type": "float",
          "id": 1
        },
        "rotation": {
          "rule": "repeated",
          "type": "float",
          "id": 2
        },
        "neck_pose": {
          "rule": "repeated",
          "type": "float",
          "id": 3
        },
        "jaw_pose": {
          "rule": "repeated",
          "type": "float",
          "id": 4
        },
        "eye_pose": {
          "rule": "repeated",
          "type": "float",
          "id": 5
        },
        "eye_lid": {
          "rule": "repeated",
          "type": "float",
          "id": 6
        },
        "expression": {
          "rule": "repeated",
          "type": "float",
          "id": 7
        }
      }
    },
    "FlameAnimation": {
      "fields": {
        "keyframes": {
          "rule": "repeated",
          "type": "Flame",
          "id": 1
        }
      }
    },
    "ServerResponseAnimation": {
      "fields": {
        "connection_id": {
          "type": "string",
          "id": 1
        },
        "req_id": {
          "type": "string",
          "id": 2
        },
        "end": {
          "type": "bool",
          "id": 3
        },
        "animation": {
          "type": "FlameAnimation",
          "id": 4
        },
        "avatar_id": {
          "type": "string",
          "id": 5
        }
      }
    },
    "ClientInterrupt": {
      "fields": {
        "req_id": {
          "type": "string",
          "id": 1
        }
      }
    },
    "Message": {
      "oneofs": {
        "data": {
          "oneof": [
            "client_configure_session",
            "server_confirm_session",
            "client_audio_input",
            "server_error",
            "server_response_animation",
            "client_interrupt"
          ]
        }
      },
      "fields": {
        "type": {
          "type": "MessageType",
          "id": 1
        },
        "client_configure_session": {
          "type": "ClientConfigureSession",
          "id": 2
        },
        "server_confirm_session": {
          "type": "ServerConfirmSession",
          "id": 3
        },
        "client_audio_input": {
          "type": "ClientAudioInput",
          "id": 4
        },
        "server_error": {
          "type": "ServerError",
          "id": 5
        },
        "server_response_animation": {
          "type": "ServerResponseAnimation",
          "id": 6
        },
        "client_interrupt": {
          "type": "ClientInterrupt",
          "id": 8
        }
      }
    }
  }
};
